import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import { base64ToBytes, bytesToBase64, decodeFloat32, encodeFloat32 } from '../../../src/shared/binary'
import type { LogLine } from '../../../src/shared/runs'
import { App } from '../../../src/renderer/src/App'
import { capPoints, emaSmooth } from '../../../src/shared/figures/series'
import { runCurves } from '../../../src/shared/figures/curves'
import { createWorkbenchStore } from '../../../src/renderer/src/store'
import { StoreContext } from '../../../src/renderer/src/store/context'
import { apiDouble, dataset, runMeta } from './api-double'

afterEach(cleanup)

/** A store whose live-event batches are applied only when the test says so. */
function manualStore(api: ReturnType<typeof apiDouble>) {
  const queued: (() => void)[] = []
  const store = createWorkbenchStore(api, { schedule: (apply) => queued.push(apply) })
  return { store, flush: () => queued.splice(0).forEach((apply) => apply()) }
}

const step = (stage: string, index: number): LogLine =>
  ({
    kind: 'step',
    stage,
    epoch: 0,
    step: index,
    loss: { crossEntropy: 2, attention: 0.5, distillation: 0.1, total: 2.6 },
    learningRate: 1e-3,
    imagesPerSecond: 100,
  }) as LogLine

describe('the binary codec', () => {
  it('round-trips bytes of every length and float32 arrays without Node buffers', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 255, 1000]) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37) % 256)
      expect(Array.from(base64ToBytes(bytesToBase64(bytes)))).toEqual(Array.from(bytes))
    }
    expect(bytesToBase64(new TextEncoder().encode('any carnal pleas'))).toBe('YW55IGNhcm5hbCBwbGVhcw==')
    const values = Float32Array.from([0, -1.5, 3.25, Number.NaN, 1e-30])
    expect(Array.from(decodeFloat32(encodeFloat32(values)))).toEqual(Array.from(values))
    expect(() => base64ToBytes('ab$=')).toThrow(/invalid base64/)
  })
})

describe('series helpers', () => {
  it('caps a series, keeping the newest half exact and the oldest point', () => {
    const n = 10_000
    const series = {
      x: Array.from({ length: n }, (_, i) => i),
      y: Array.from({ length: n }, (_, i) => i * 2),
    }
    const capped = capPoints(series, 1000)
    expect(capped.x).toHaveLength(1000)
    expect(capped.x[0]).toBe(0)
    expect(capped.x.slice(-500)).toEqual(series.x.slice(-500))
    expect(capPoints({ x: [1], y: [2] }, 1000)).toEqual({ x: [1], y: [2] })
  })

  it('smooths like TensorBoard: debiased, so a constant stays constant from the first point', () => {
    expect(emaSmooth([3, 3, 3], 0.9).map((v) => Number(v.toFixed(10)))).toEqual([3, 3, 3])
    const smoothed = emaSmooth([0, 10, 0, 10], 0.5)
    expect(smoothed[0]).toBe(0)
    expect(smoothed[3]).toBeLessThan(10)
    expect(emaSmooth([1, 2], 0)).toEqual([1, 2])
  })

  it('puts every stage on one epoch and step axis', () => {
    const run = runMeta()
    const start = (stage: string, stageIndex: number): LogLine => ({
      kind: 'stage-start',
      stage,
      stageIndex,
      epochs: 2,
      stepsPerEpoch: 3,
      startEpoch: 0,
      teacher: null,
    })
    const log: LogLine[] = [
      start('teacher', 0),
      step('teacher', 0),
      start('tanh', 1),
      step('tanh', 4),
      {
        kind: 'epoch',
        stage: 'tanh',
        epoch: 1,
        train: { top1: 0.5, top5: 0.9, loss: 1 },
        test: { top1: 0.4, top5: 0.8, loss: 1 },
        flipRatios: [],
        seconds: 3,
      },
    ]
    const curves = runCurves(run.config, log)
    expect(curves.stages.map((s) => s.stepOffset)).toEqual([
      0,
      6,
      12,
      12 + run.config.stages[2]!.epochs * run.config.stages[2]!.stepsPerEpoch,
    ])
    expect(curves.steps.map((s) => s.x)).toEqual([1, 11])
    expect(curves.epochs[0]).toMatchObject({ x: run.config.stages[0]!.epochs + 2, testTop1: 0.4 })
  })

  it('averages the latent-weight sign flips over binary layers, and has none for real-weight stages', () => {
    const epoch = (stage: string, flipRatios: { layer: string; ratio: number }[]) =>
      ({
        kind: 'epoch',
        stage,
        epoch: 0,
        train: { top1: 0.5, top5: 0.9, loss: 1 },
        test: { top1: 0.4, top5: 0.8, loss: 1 },
        flipRatios,
        seconds: 1,
      }) as LogLine
    const curves = runCurves(runMeta().config, [
      epoch('ban', []),
      epoch('bnn', [
        { layer: 'block_1a.conv', ratio: 0.1 },
        { layer: 'block_1b.conv', ratio: 0.3 },
      ]),
    ])
    expect(curves.epochs.map((e) => e.flipRatio)).toEqual([null, expect.closeTo(0.2, 10)])
  })
})

describe('the store', () => {
  it('applies live events in batches, to the runs list and to loaded histories', async () => {
    const api = apiDouble({ runs: [runMeta()] })
    const { store, flush } = manualStore(api)
    await store.getState().loadRuns()
    await store.getState().loadHistory('run-1')
    api.push({ type: 'record', runId: 'run-1', record: step('teacher', 0) })
    api.push({ type: 'record', runId: 'run-1', record: step('teacher', 1) })
    api.push({ type: 'snapshot', runId: 'run-1', kind: 'attention', stage: 'tanh', epochsCompleted: 1 })
    api.push({ type: 'run', run: runMeta({ status: 'paused' }) })
    expect(store.getState().histories['run-1']?.log).toHaveLength(0)
    flush()
    const history = store.getState().histories['run-1']
    expect(history?.log).toHaveLength(2)
    expect(history?.snapshots).toEqual([{ kind: 'attention', stage: 'tanh', epochsCompleted: 1 }])
    expect(history?.run.status).toBe('paused')
    expect(store.getState().runs[0]?.status).toBe('paused')
  })

  it('follows an import from start to its result and lists the new dataset', async () => {
    const api = apiDouble()
    const { store, flush } = manualStore(api)
    await store.getState().startImport({ path: '/data/tiny' })
    expect(store.getState().importJob).toMatchObject({ importId: 'imp-1', state: 'starting' })
    const progress = {
      phase: 'importing' as const,
      itemsDone: 2,
      itemsTotal: 6,
      bytesDone: 8,
      bytesTotal: 24,
      itemsPerSecond: 10,
      bytesPerSecond: 40,
      etaSeconds: 0.4,
    }
    const base = {
      type: 'import' as const,
      importId: 'imp-1',
      path: '/data/tiny',
      dataset: null,
      error: null,
    }
    api.push({ ...base, state: 'progress', progress })
    flush()
    expect(store.getState().importJob).toMatchObject({ state: 'progress', progress: { itemsDone: 2 } })
    api.push({ ...base, state: 'done', progress: null, dataset })
    flush()
    expect(store.getState().importJob?.state).toBe('done')
    await act(async () => {})
    expect(api.calls.filter((c) => c === 'listDatasets')).toHaveLength(1)
  })

  it('keeps a failed import readable', async () => {
    const api = apiDouble()
    const { store, flush } = manualStore(api)
    await store.getState().startImport({ path: '/nowhere' })
    api.push({
      type: 'import',
      importId: 'imp-1',
      path: '/nowhere',
      state: 'failed',
      progress: null,
      dataset: null,
      error: '/nowhere: no such file or folder',
    })
    flush()
    expect(store.getState().importJob).toMatchObject({
      state: 'failed',
      error: '/nowhere: no such file or folder',
    })
  })
})

function renderWith(api: ReturnType<typeof apiDouble>) {
  const store = createWorkbenchStore(api, { schedule: (apply) => apply() })
  render(
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>,
  )
  return store
}

describe('the views', () => {
  it('lists datasets, renames one and deletes it only after confirmation', async () => {
    const api = apiDouble({ datasets: [dataset] })
    renderWith(api)
    await act(async () => {})
    const table = screen.getByRole('table', { name: 'Datasets' })
    expect(within(table).getByText('2×2×1')).toBeTruthy()
    fireEvent.click(screen.getByRole('button', { name: 'Rename' }))
    fireEvent.change(screen.getByLabelText('New name'), { target: { value: 'Smaller' } })
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Save' })))
    expect(api.calls).toContain('renameDataset tiny Smaller')
    expect(screen.getByRole('heading', { level: 2 }).textContent).toBe('Smaller')

    fireEvent.click(screen.getByRole('button', { name: 'Delete' }))
    expect(api.calls.some((c) => c.startsWith('removeDataset'))).toBe(false)
    fireEvent.click(within(screen.getByRole('alertdialog')).getByRole('button', { name: 'Keep it' }))
    expect(screen.queryByRole('alertdialog')).toBeNull()
    fireEvent.click(screen.getByRole('button', { name: 'Delete' }))
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Delete dataset' })))
    expect(api.calls).toContain('removeDataset tiny')
    expect(screen.getByText('No datasets yet.')).toBeTruthy()
  })

  it('shows an empty state without datasets, and the import error a failed import reports', async () => {
    const api = apiDouble()
    renderWith(api)
    await act(async () => {})
    expect(screen.getByText('No datasets yet.')).toBeTruthy()
    fireEvent.change(screen.getByLabelText('Path on the workbench machine'), {
      target: { value: '/nowhere' },
    })
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Import' })))
    expect(api.calls).toContain('importDataset /nowhere')
    act(() =>
      api.push({
        type: 'import',
        importId: 'imp-1',
        path: '/nowhere',
        state: 'failed',
        progress: null,
        dataset: null,
        error: 'no such folder',
      }),
    )
    expect(screen.getByRole('status').textContent).toMatch(/Import failed: no such folder/)
  })

  it('drives a training run from its dashboard and warns about a software adapter', async () => {
    const api = apiDouble({
      runs: [
        runMeta({
          environment: {
            engine: 'tfjs',
            device: { kind: 'wasm', description: 'only a software adapter' },
            versions: { node: '22' },
            platform: 'linux',
            distributed: null,
            backend: {
              backend: 'wasm',
              requested: 'auto',
              reason: 'only a software adapter',
              adapter: {
                vendor: 'mesa',
                architecture: '',
                device: 'llvmpipe',
                description: 'llvmpipe',
                isSoftware: true,
              },
              slow: true,
              wasmSimd: true,
              tfjsVersion: '4.22.0',
            },
          },
        }),
      ],
    })
    const store = renderWith(api)
    act(() => store.getState().navigate('runs'))
    await act(async () => {})
    expect(screen.getByRole('tab', { name: 'Dashboard' }).getAttribute('aria-selected')).toBe('true')
    expect(screen.getByRole('note').textContent).toMatch(/software adapter/)
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Pause' })))
    expect(api.calls).toContain('pauseRun run-1')
    act(() => api.push({ type: 'run', run: runMeta({ status: 'paused' }) }))
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Resume' })))
    expect(api.calls).toContain('resumeRun run-1')
    // Arrow keys move between the run's views.
    fireEvent.keyDown(screen.getByRole('tab', { name: 'Dashboard' }), { key: 'ArrowRight' })
    expect(screen.getByRole('tab', { name: 'Attention' }).getAttribute('aria-selected')).toBe('true')
    expect(screen.getByText(/No attention maps yet/)).toBeTruthy()
  })

  it('exports the fully binary stage of a finished run and shows the packed size', async () => {
    const api = apiDouble({ runs: [runMeta({ status: 'finished' })] })
    const store = renderWith(api)
    act(() => store.getState().navigate('runs'))
    await act(async () => {})
    expect(screen.queryByRole('button', { name: 'Pause' })).toBeNull()
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Export binary model' })))
    expect(api.calls).toContain('exportStage run-1 bnn')
    expect(screen.getByRole('status', { name: 'Export' }).textContent).toMatch(
      /Exported to \/data\/runs\/run-1\/export\/bnn\.r2bx: 67\.6 KiB \(minimum 57\.9 KiB; the float32 model is 712\.2 KiB, 10\.5× larger\)/,
    )
  })

  it('offers no export for a run that has not finished', async () => {
    renderWith(apiDouble({ runs: [runMeta({ status: 'stopped' })] }))
      .getState()
      .navigate('runs')
    await act(async () => {})
    expect(screen.queryByRole('button', { name: 'Export binary model' })).toBeNull()
  })
})
