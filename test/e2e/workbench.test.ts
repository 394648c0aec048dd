/// <reference lib="dom" />
import { mkdirSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WorkbenchHost } from '../../src/main/host/workbench-host'
import { ensureRendererBuilt } from '../../src/main/host/renderer-bundle'
import { startWsServer, type WsServerHandle } from '../../src/main/host/ws-server'
import { launchWorkerProcess } from '../../src/main/training/worker-client'
import { writeFashionIdx } from '../fixtures/fashion-subset'
import { launchChromium } from '../support/chromium'

let host: WorkbenchHost
let server: WsServerHandle
let browser: Browser
let page: Page
let source: string
const problems: string[] = []
const artifacts = join(import.meta.dirname, '../../test-results/e2e')

beforeAll(async () => {
  const home = await mkdtemp(join(tmpdir(), 'r2b-e2e-home-'))
  source = join(await mkdtemp(join(tmpdir(), 'r2b-e2e-src-')), 'fashion-small')
  await writeFashionIdx(source, { train: 24, test: 4 })
  const dir = await ensureRendererBuilt(() => {})
  host = new WorkbenchHost({
    appVersion: '0.1.0',
    versions: { node: process.versions.node },
    home,
    startWorker: () => launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true }),
  })
  host.start()
  server = await startWsServer(host, { rendererDir: dir })
  browser = await launchChromium()
  mkdirSync(artifacts, { recursive: true })
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } })
  page.on('console', (m) => m.type() === 'error' && problems.push(m.text()))
  page.on('pageerror', (e) => problems.push(e.message))
  // Main-thread long tasks (>50 ms), collected from the start so the streaming phase is covered.
  await page.addInitScript(() => {
    const w = window as unknown as { __longTasks: number[] }
    w.__longTasks = []
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.__longTasks.push(entry.duration)
    }).observe({ type: 'longtask' as never, buffered: true })
  })
})

afterAll(async () => {
  await browser?.close()
  await server?.close()
  await host?.stop()
})

const nav = (name: string) => page.getByRole('navigation', { name: 'Main' }).getByRole('button', { name })

/** Trace data Plotly holds for the figure with this test id. */
function traces(testId: string) {
  return page.evaluate((id) => {
    const gd = document.querySelector(`[data-testid="${id}"]`) as unknown as {
      data?: { name?: string; type?: string; x?: unknown[]; z?: (number | null)[][] }[]
    } | null
    return (gd?.data ?? []).map((t) => ({
      name: t.name ?? '',
      type: t.type ?? '',
      points: t.x?.length ?? 0,
      z: t.type === 'heatmap' ? (t.z ?? []).flat() : [],
    }))
  }, testId)
}

async function waitForStatus(status: string, timeout = 120_000) {
  await page.getByLabel('Run status').filter({ hasText: status }).waitFor({ timeout })
}

async function startTinyRun(pipeline: string, epochs: number, steps: number) {
  await nav('New run').click()
  await page.getByLabel('Pipeline').selectOption(pipeline)
  const knobs: Record<string, string> = {
    'Epochs per stage': String(epochs),
    'Steps per epoch': String(steps),
    'Batch size': '8',
    'Width multiplier': '0.0625',
    'Test images per epoch': '20',
    'Probe images': '2',
  }
  for (const [label, value] of Object.entries(knobs)) await page.getByLabel(label).fill(value)
  await page.getByLabel('Model totals').waitFor({ timeout: 60_000 })
  await page.getByRole('button', { name: 'Start training' }).click()
  await page.getByRole('tab', { name: 'Dashboard' }).waitFor()
}

describe('the workbench in Chromium against `serve`, with a fresh data dir', () => {
  it('imports a dataset, trains live, shows attention, gates, the model and a comparison', async () => {
    const started = Date.now()
    await page.goto(server.url)

    // Datasets: import by path, with the outcome, samples per class and the class histogram.
    await page.getByLabel('Path on the workbench machine').fill(source)
    await page.getByLabel('Name (optional)').fill('Fashion small')
    await page.getByRole('button', { name: 'Import', exact: true }).click()
    await page.getByText(/Imported Fashion small/).waitFor({ timeout: 60_000 })
    await page
      .getByRole('img', { name: / sample 1$/ })
      .first()
      .waitFor()
    await page.getByRole('img', { name: 'Class histogram' }).locator('.main-svg').first().waitFor()
    await page.screenshot({ path: join(artifacts, 'datasets.png'), fullPage: true })

    // New run: the R2B chain with its stage diagram and model summary, then start it.
    await nav('New run').click()
    await page.getByLabel('Stage chain').getByText('taught by teacher').waitFor()
    await page.getByLabel('Model totals').waitFor({ timeout: 60_000 })
    await page.screenshot({ path: join(artifacts, 'new-run.png'), fullPage: true })
    const longTasksBefore = await page.evaluate(
      () => (window as unknown as { __longTasks: number[] }).__longTasks.length,
    )
    await startTinyRun('r2b', 2, 8)

    // Live: the loss curve gains points while the run trains.
    const counts = new Set<number>()
    while ([...counts].filter((n) => n > 0).length < 3) {
      const loss = (await traces('loss-plot')).find((t) => t.name === 'cross-entropy')
      counts.add(loss?.points ?? 0)
      await page.waitForFunction(
        ([seen]) => {
          const gd = document.querySelector('[data-testid="loss-plot"]') as unknown as {
            data?: { name?: string; x?: unknown[] }[]
          }
          const n = gd?.data?.find((t) => t.name === 'cross-entropy')?.x?.length ?? 0
          return n > (seen as number)
        },
        [Math.max(...counts)],
        { timeout: 60_000 },
      )
    }
    // Pause and resume while it trains.
    await page.getByRole('button', { name: 'Pause' }).click()
    await waitForStatus('paused')
    await page.getByRole('button', { name: 'Resume' }).click()
    await waitForStatus('running')
    await waitForStatus('finished')
    const longTasks = await page.evaluate(
      (from) => (window as unknown as { __longTasks: number[] }).__longTasks.slice(from),
      longTasksBefore,
    )
    const accuracy = await traces('accuracy-plot')
    expect(accuracy.find((t) => t.name === 'test top-1')?.points).toBe(8)
    await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true })

    // Attention: every transfer point has non-constant teacher and student maps.
    await page.getByRole('tab', { name: 'Attention' }).click()
    await page.getByRole('group', { name: 'Stage and epoch' }).getByLabel('Stage').selectOption('ban')
    await page.waitForFunction(() => {
      const gd = document.querySelector('[data-testid="attention-grid"]') as unknown as {
        data?: { name?: string }[]
      }
      return (gd?.data ?? []).filter((t) => t.name?.startsWith('teacher ')).length === 8
    })
    const grid = await traces('attention-grid')
    for (const role of ['teacher', 'student']) {
      const maps = grid.filter((t) => t.type === 'heatmap' && t.name.startsWith(`${role} `))
      expect(maps).toHaveLength(8)
      for (const map of maps) {
        const values = map.z.filter((v): v is number => typeof v === 'number')
        expect(values.length, map.name).toBeGreaterThan(0)
        expect(Math.max(...values), map.name).toBeGreaterThan(Math.min(...values))
      }
    }
    await page.screenshot({ path: join(artifacts, 'attention.png'), fullPage: true })
    // Any test image, inspected by the worker.
    await page.getByLabel('Test image #').fill('7')
    await page.getByRole('button', { name: 'Inspect' }).click()
    await page.getByText(/test image 7 \(inspected by the worker\)/).waitFor({ timeout: 60_000 })
    // Or the first test image of a class.
    await page.getByLabel('or the first of class').selectOption({ index: 4 })
    await page.getByText(/test image (?!7 )\d+ \(inspected by the worker\)/).waitFor({ timeout: 60_000 })

    // Gates: the blocks × channels heatmap holds the mean gate values.
    await page.getByRole('tab', { name: 'Gates' }).click()
    await page.waitForFunction(() => {
      const gd = document.querySelector('[data-testid="gates-heatmap"]') as unknown as { data?: unknown[] }
      return (gd?.data ?? []).length > 0
    })
    const gates = (await traces('gates-heatmap'))[0]
    const gateValues = (gates?.z ?? []).filter((v): v is number => typeof v === 'number')
    expect(gateValues.length).toBeGreaterThan(16)
    expect(gateValues.every((v) => v >= 0 && v <= 1)).toBe(true)
    await page.screenshot({ path: join(artifacts, 'gates.png'), fullPage: true })

    await page.getByRole('tab', { name: 'Model' }).click()
    await page.getByRole('table', { name: 'Model summary' }).waitFor({ timeout: 60_000 })
    await page.screenshot({ path: join(artifacts, 'model.png'), fullPage: true })

    // A second run (the strong baseline), then both compared.
    await startTinyRun('baseline', 1, 3)
    await waitForStatus('finished')
    await nav('Compare').click()
    for (const box of await page.getByRole('checkbox').all()) await box.check()
    await page.waitForFunction(() => {
      const gd = document.querySelector('[data-testid="compare-plot"]') as unknown as { data?: unknown[] }
      return (gd?.data ?? []).length === 4
    })
    const table = page.getByRole('table', { name: 'Final accuracy per stage' })
    expect(await table.locator('tbody tr').count()).toBe(2)
    await page.screenshot({ path: join(artifacts, 'compare.png'), fullPage: true })

    const longest = Math.max(0, ...longTasks)
    process.stdout.write(
      `[e2e] main-thread long tasks while events streamed: ${longTasks.length}, longest ${longest.toFixed(0)} ms; ` +
        `whole flow ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    )
    expect(problems).toEqual([])
  }, 240_000)
})
