/// <reference lib="dom" />
import { mkdirSync } from 'node:fs'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ABLATION_ROWS, cellKey, type AblationGroup } from '../../src/shared/ablation'
import { makeRunConfig } from '../../src/shared/run-config'
import { WorkbenchHost } from '../../src/main/host/workbench-host'
import { ensureRendererBuilt } from '../../src/main/host/renderer-bundle'
import { startWsServer, type WsServerHandle } from '../../src/main/host/ws-server'
import { ablationsDir } from '../../src/main/training/ablation'
import { launchChromium } from '../support/chromium'

/**
 * The Ablation view in Chromium against a real `serve`, at the smallest supported size (1024×700), with the
 * widest table there is: every row of Table 3, both downsamples, the paper's figures beside each cell. The
 * table scrolls sideways inside its pane; nothing else overflows. No training: the group's runs are written
 * to the store as finished, and the worker is never started.
 */

let server: WsServerHandle
let host: WorkbenchHost
let browser: Browser
let page: Page
const artifacts = join(import.meta.dirname, '../../test-results/e2e')

beforeAll(async () => {
  const home = await mkdtemp(join(tmpdir(), 'r2b-e2e-ablation-'))
  host = new WorkbenchHost({
    appVersion: '0.1.0',
    versions: { node: process.versions.node },
    home,
    startWorker: () => {
      throw new Error('the Ablation view must not need the training worker')
    },
  })
  const runs: Record<string, string> = {}
  for (const row of ABLATION_ROWS)
    for (const downsample of ['real', 'binary'] as const)
      for (const seed of [1, 2]) {
        const config = makeRunConfig({ preset: 'cifar100-paper', pipeline: row, downsample, seed })
        const last = row === 'r2b' && downsample === 'binary' && seed === 2
        const id = `abl-${row.replace(/\+/g, '-')}-${downsample}-${seed}`
        await host.store.create(config, { id, status: last ? 'running' : 'finished' })
        if (!last)
          await host.store.update(id, (meta) => ({
            ...meta,
            stages: meta.stages.map((s, i) => ({
              ...s,
              status: 'finished',
              epochsCompleted: s.epochs,
              testTop1: 0.6 + 0.01 * i + 0.005 * seed,
              testTop5: 0.85 + 0.01 * i,
            })),
          }))
        runs[cellKey(row, downsample, seed)] = id
      }
  const group: AblationGroup = {
    version: 1,
    group: 'cifar100-cifar100-paper-torch',
    dataset: 'cifar100',
    preset: 'cifar100-paper',
    engine: 'torch',
    rows: [...ABLATION_ROWS],
    downsample: ['real', 'binary'],
    seeds: [1, 2],
    set: [],
    runs,
    createdAt: '2026-03-01T10:00:00.000Z',
  }
  await mkdir(ablationsDir(home), { recursive: true })
  await writeFile(join(ablationsDir(home), `${group.group}.json`), JSON.stringify(group))
  server = await startWsServer(host, { rendererDir: await ensureRendererBuilt(() => {}) })
  browser = await launchChromium()
  mkdirSync(artifacts, { recursive: true })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await host?.stop()
})

describe('the Ablation view in the browser', () => {
  it('is readable at 1024×700: the table scrolls inside its pane, and a cell opens its run', async () => {
    page = await browser.newPage({ viewport: { width: 1024, height: 700 } })
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(e.message))
    await page.goto(server.url)
    await page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name: 'Ablation' }).click()
    const table = page.getByRole('table')
    await table.waitFor()
    expect(await page.getByText('23 of 24 cells finished · 1 run still training').count()).toBe(1)
    expect(await table.getByRole('rowheader').allTextContents()).toEqual([
      'Strong baseline (SB)',
      'SB + attention',
      'SB + attention + KD',
      'SB + gating only',
      'SB + progressive teacher-student',
      'Real-to-Bin',
    ])
    const layout = await page.evaluate(() => {
      const pane = document.querySelector('main.content') as HTMLElement
      const scroller = document.querySelector('.table-scroll') as HTMLElement
      const edge = pane.getBoundingClientRect().right + 1
      const outside = Array.from(pane.querySelectorAll('*'))
        .filter((el) => !scroller.contains(el) && el.getBoundingClientRect().right > edge)
        .map((el) => `${el.tagName.toLowerCase()}.${Array.from(el.classList).join('.')}`)
      return {
        paneScrolls: pane.scrollWidth > pane.clientWidth + 1,
        tableWider: scroller.scrollWidth > scroller.clientWidth,
        scrollerFits: scroller.getBoundingClientRect().right <= edge,
        outside,
      }
    })
    await page.screenshot({ path: join(artifacts, 'ablation-1024x700.png') })
    expect(layout).toEqual({ paneScrolls: false, tableWider: true, scrollerFits: true, outside: [] })

    // Scrolled to its far end, the method names stay in view.
    const nameInView = await page.evaluate(() => {
      const scroller = document.querySelector('.table-scroll') as HTMLElement
      scroller.scrollLeft = scroller.scrollWidth
      const name = scroller.querySelector('tbody th') as HTMLElement
      return name.getBoundingClientRect().left - scroller.getBoundingClientRect().left
    })
    await page.screenshot({ path: join(artifacts, 'ablation-1024x700-scrolled.png') })
    expect(Math.abs(nameInView)).toBeLessThan(2)
    await table
      .getByRole('row', { name: /^SB \+ gating only/ })
      .getByRole('button')
      .first()
      .click()
    await page.getByRole('heading', { level: 1, name: 'Runs' }).waitFor()
    // The run list marks the opened run: the row's first downsample, first seed.
    await page.locator('.run-item[aria-current="true"]').filter({ hasText: 'sb+gate' }).waitFor()
    expect(await page.locator('.run-item[aria-current="true"]').count()).toBe(1)
    expect(errors).toEqual([])
  })
})
