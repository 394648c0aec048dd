import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WorkbenchHost } from '../../src/main/host/workbench-host'
import { ensureRendererBuilt } from '../../src/main/host/renderer-bundle'
import { startWsServer, type WsServerHandle } from '../../src/main/host/ws-server'
import { launchWorkerProcess } from '../../src/main/training/worker-client'
import { launchChromium } from '../support/chromium'

let host: WorkbenchHost
let server: WsServerHandle
let browser: Browser
const artifacts = join(import.meta.dirname, '../../test-results/e2e')

beforeAll(async () => {
  const dir = await ensureRendererBuilt(() => {})
  host = new WorkbenchHost({
    appVersion: '0.1.0',
    versions: { node: process.versions.node },
    startWorker: () => launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true }),
  })
  host.start()
  server = await startWsServer(host, { rendererDir: dir })
  browser = await launchChromium()
  mkdirSync(artifacts, { recursive: true })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await host?.stop()
})

describe('the UI in Chromium against `serve`', () => {
  it('renders the app frame and shows the worker backend in the about panel, without console errors', async () => {
    const page = await browser.newPage()
    const problems: string[] = []
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()))
    page.on('pageerror', (e) => problems.push(e.message))
    await page.goto(server.url)
    await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Runs' }).click()
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Runs')
    await page.getByRole('button', { name: 'About' }).click()
    const backend = page.getByLabel('Training backend')
    await backend.getByText('wasm (tfjs 4.22.0)').waitFor({ timeout: 60_000 })
    await page.screenshot({ path: join(artifacts, 'about.png') })
    expect(problems).toEqual([])
    await page.close()
  })

  it('without the token the page gets no API and says how to connect', async () => {
    const page = await browser.newPage()
    await page.goto(server.url.replace(/\?token=.*/, ''))
    await page.getByRole('heading', { name: 'This page has no access token' }).waitFor()
    await page.getByText(/it ends in \?token=/).waitFor()
    // The workbench itself is not shown: no navigation, nothing of the store.
    expect(await page.getByRole('navigation', { name: 'Main' }).count()).toBe(0)
    await page.close()
  })
})
