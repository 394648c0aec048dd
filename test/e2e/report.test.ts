import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeReport } from '../../src/main/cli/commands/report'
import { RunStore } from '../../src/main/runs/run-store'
import { createRun } from '../../src/main/training/new-run'
import { Trainer } from '../../src/main/training/trainer'
import { launchWorkerProcess } from '../../src/main/training/worker-client'
import { importFashionSubset } from '../fixtures/fashion-subset'
import { launchChromium } from '../support/chromium'

let browser: Browser
let store: RunStore
let runId: string

beforeAll(async () => {
  const home = await mkdtemp(join(tmpdir(), 'r2b-report-'))
  store = new RunStore(home)
  const dataset = await importFashionSubset(home)
  const set = ['model.width=0.0625', 'data.testLimit=40', 'eval.probes=2', 'eval.gateSubset=20']
  for (let i = 0; i < 4; i++)
    set.push(`stages.${i}.epochs=2`, `stages.${i}.stepsPerEpoch=3`, `stages.${i}.batchSize=16`)
  const run = await createRun(store, { dataset: dataset.id, pipeline: 'r2b', set })
  const trainer = new Trainer(store, () =>
    launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true }),
  )
  expect((await trainer.train(run.id)).status).toBe('finished')
  await trainer.shutdown()
  runId = run.id
  browser = await launchChromium()
})

afterAll(async () => {
  await browser?.close()
})

describe('the HTML report', () => {
  it('opens from disk in Chromium without console errors and draws every plot', async () => {
    const file = await writeReport(store, runId, join(store.dir(runId), 'report'))
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    const problems: string[] = []
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()))
    page.on('pageerror', (e) => problems.push(e.message))
    // The page must work offline and from disk: block every network request.
    await page.route(/^https?:/, (route) => route.abort())
    await page.goto(`file://${file}`)
    // Curves (3), and per stage its attention grid; the three binary-architecture stages add gate heatmaps.
    const plots = page.locator('.js-plotly-plot')
    await expect.poll(() => plots.count()).toBe(3 + 4 + 3)
    const accuracyTraces = await page.locator('#accuracy .scatterlayer .trace').count()
    expect(accuracyTraces).toBe(4)
    // The accuracy plot has a point per epoch of every stage: 8 markers on each test curve.
    expect(await page.locator('#accuracy .scatterlayer .trace').first().locator('.point').count()).toBe(8)
    expect(await page.locator('#attention-tanh .heatmaplayer .hm').count()).toBe(16)
    expect(await page.locator('#gates-bnn .heatmaplayer .hm').count()).toBe(1)
    await page.screenshot({
      path: join(import.meta.dirname, '../../test-results/e2e/report.png'),
      fullPage: true,
    })
    expect(problems).toEqual([])
  })
})
