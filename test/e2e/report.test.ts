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
    // Curves (3), the attention loss per point over epochs, one image across snapshots, per stage its
    // attention grid (4), the three binary-architecture stages' gate heatmaps, and the gate spread per epoch.
    const plots = page.locator('.js-plotly-plot')
    await expect.poll(() => plots.count()).toBe(3 + 1 + 1 + 4 + 3 + 1)
    // Accuracy: four curves, each one line per stage (never joined across stages), a point per epoch.
    const accuracy = page.locator('#accuracy .scatterlayer .trace')
    expect(await accuracy.count()).toBe(4 * 4)
    expect(await page.locator('#accuracy .scatterlayer .trace').first().locator('.point').count()).toBe(2)
    // The attention term is named as in the app: unweighted.
    expect(await page.locator('#losses .legendtext').allTextContents()).toContain(
      'attention loss (unweighted)',
    )
    // Teacher, student and their difference at 8 points in a stage with a teacher.
    expect(await page.locator('#attention-tanh .heatmaplayer .hm').count()).toBe(24)
    expect(await page.locator('#attention-teacher .heatmaplayer .hm').count()).toBe(8)
    expect(await page.locator('#gates-bnn .heatmaplayer .hm').count()).toBe(1)
    expect(await page.locator('#attention-strip .heatmaplayer .hm').count()).toBeGreaterThanOrEqual(8)
    // The toolbar offers nothing that leaves the machine.
    await page.locator('#accuracy').hover()
    const buttons = await page
      .locator('#accuracy .modebar-btn')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-title') ?? ''))
    expect(buttons).toContain('Download plot as a PNG')
    expect(buttons.join(', ')).not.toMatch(/share|cloud/i)
    await page.screenshot({
      path: join(import.meta.dirname, '../../test-results/e2e/report.png'),
      fullPage: true,
    })
    expect(problems).toEqual([])
  })
})
