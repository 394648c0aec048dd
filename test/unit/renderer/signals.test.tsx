import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../../../src/renderer/src/App'
import { figureName, tracesToCsv, tracesToJson } from '../../../src/renderer/src/lib/download'
import { knobProblems, type Knobs } from '../../../src/renderer/src/lib/run-form'
import { createWorkbenchStore } from '../../../src/renderer/src/store'
import { StoreContext } from '../../../src/renderer/src/store/context'
import {
  DIVERGING_COLORSCALE,
  DIVERGING_NEGATIVE,
  DIVERGING_POSITIVE,
  diverging,
} from '../../../src/shared/figures/colormap'
import { metricSegments, runCurves, stageRole, timeLeft } from '../../../src/shared/figures/curves'
import { attentionLossOf, centredGates, gateSpread, topClasses } from '../../../src/shared/figures/maps'
import type { AttentionRecord, GateRecord } from '../../../src/shared/records'
import { makeRunConfig } from '../../../src/shared/run-config'
import type { LogLine } from '../../../src/shared/runs'
import { apiDouble, dataset, runMeta } from './api-double'

afterEach(cleanup)

const step = (stage: string, epoch: number, index: number, attention: number, ips = 100): LogLine =>
  ({
    kind: 'step',
    stage,
    epoch,
    step: index,
    loss: { crossEntropy: 2, attention, distillation: 0.1, total: 2.6 },
    learningRate: 1e-3,
    imagesPerSecond: ips,
  }) as LogLine
const start = (stage: string, stageIndex: number, epochs = 2, stepsPerEpoch = 3): LogLine => ({
  kind: 'stage-start',
  stage,
  stageIndex,
  epochs,
  stepsPerEpoch,
  startEpoch: 0,
  teacher: null,
})

describe('curves per stage', () => {
  const run = runMeta()
  const log: LogLine[] = [
    start('teacher', 0),
    ...[0, 1, 2, 3, 4, 5].map((i) => step('teacher', Math.floor(i / 3), i, 0)),
    start('tanh', 1),
    ...[0, 1, 2].map((i) => step('tanh', 0, i, 0.05 - i * 0.01)),
  ]
  const curves = runCurves(run.config, log)

  it('gives one segment per stage, never joined, with the stage-local step', () => {
    const segments = metricSegments(curves, 'attention')
    expect(segments.map((s) => s.stage)).toEqual(['teacher', 'tanh'])
    expect(segments[1]!.x).toEqual([7, 8, 9])
    expect(segments[1]!.local).toEqual([1, 2, 3])
    // Within one stage the axis counts from that stage's first step.
    expect(metricSegments(curves, 'attention', { stage: 'tanh' })[0]!.x).toEqual([1, 2, 3])
  })

  it('smooths within a stage only: a stage starts from its own first value', () => {
    const smoothed = metricSegments(curves, 'attention', { smoothing: 0.9 })
    expect(smoothed[1]!.y[0]).toBeCloseTo(0.05, 10)
  })

  it('estimates the time left from the first steps, stage by stage', () => {
    const left = timeLeft({ ...run, status: 'running' }, run.config, curves)!
    // batch 32 at 100 images/s = 0.32 s per step; tanh has 3 of 6 steps left, ban and bnn all of theirs.
    const later = run.config.stages.slice(2).reduce((n, s) => n + s.epochs * s.stepsPerEpoch, 0)
    expect(left.stepsLeft).toBe(3 + later)
    expect(left.seconds).toBeCloseTo((3 + later) * 0.32, 6)
    expect(timeLeft(run, run.config, runCurves(run.config, []))).toBeNull()
  })

  it('names stages by what they train, so pipelines line up', () => {
    const r2b = makeRunConfig({ pipeline: 'r2b' })
    const sb = makeRunConfig({ pipeline: 'baseline' })
    expect(r2b.stages.map((s) => stageRole(s.student).key)).toEqual(
      ['identity/real', 'tanh/real', 'sign/real', 'sign/sign'].map((k, i) => (i === 0 ? 'real' : k)),
    )
    expect(sb.stages.map((s) => stageRole(s.student).key)).toEqual(['sign/real', 'sign/sign'])
  })
})

describe('attention and gate figures', () => {
  const map = (values: number[]) => ({ shape: [2, 1, 2], data: Float32Array.from(values) })
  const record: AttentionRecord = {
    kind: 'attention',
    stage: 'tanh',
    epochsCompleted: 1,
    probes: [4, 9],
    form: 'larq',
    points: [{ point: 'block_1', student: map([1, 0, 0, 0]), teacher: map([0, 0, 0, 0]) }],
  }

  it('recomputes the attention loss per point over the probe images', () => {
    // larq: per image the MSE of the maps; image 1: (1² + 0)/2 = 0.5, image 2: 0; mean over probes 0.25.
    const loss = attentionLossOf(record)!
    expect(loss.losses).toEqual([0.25])
    expect(loss.total).toBe(0.25)
    expect(attentionLossOf({ ...record, points: [{ ...record.points[0]!, teacher: null }] })).toBeNull()
  })

  it('centres gates on each convolution’s mean or on 0.5, with a symmetric range', () => {
    const gates: GateRecord = {
      kind: 'gates',
      stage: 'ban',
      epochsCompleted: 1,
      probes: [0],
      subset: 10,
      gates: [
        {
          block: 'block_1a',
          mean: Float32Array.from([0.4, 0.6]),
          perProbe: { shape: [1, 2], data: Float32Array.from([0.5, 0.7]) },
        },
        {
          block: 'block_2a',
          mean: Float32Array.from([0.5]),
          perProbe: { shape: [1, 1], data: Float32Array.from([0.5]) },
        },
      ],
    }
    const byMean = centredGates(gates, { kind: 'mean' }, 'row-mean')
    expect(byMean.delta[0]!.map((v) => Number(v!.toFixed(6)))).toEqual([-0.1, 0.1])
    expect(byMean.delta[1]).toEqual([0, null])
    expect(byMean.range).toBeCloseTo(0.1, 6)
    const image = centredGates(gates, { kind: 'probe', probe: 0 }, 'half')
    expect(image.delta[0]!.map((v) => Number(v!.toFixed(6)))).toEqual([0, 0.2])
    expect(gateSpread([0.4, 0.6])).toBeCloseTo(0.1, 6)
  })

  it('ranks classes by softmax probability', () => {
    const top = topClasses([0, 2, 1], 2)
    expect(top.map((t) => t.index)).toEqual([1, 2])
    expect(top[0]!.probability).toBeGreaterThan(top[1]!.probability)
  })

  it('draws differences with one convention everywhere: red above zero, blue below', () => {
    expect(diverging(1)).toEqual(DIVERGING_POSITIVE)
    expect(diverging(-1)).toEqual(DIVERGING_NEGATIVE)
    expect(diverging(0)).toEqual([255, 255, 255])
    expect(DIVERGING_COLORSCALE.at(-1)![1]).toBe(`rgb(${DIVERGING_POSITIVE.join(',')})`)
    expect(DIVERGING_POSITIVE[0]).toBeGreaterThan(DIVERGING_POSITIVE[2])
  })
})

describe('figure downloads', () => {
  it('names files after run, view and stage, and writes the plotted data as CSV and JSON', () => {
    expect(figureName('20261201-r2b', 'dashboard', 'attention loss', 'ban')).toBe(
      '20261201-r2b_dashboard_attention-loss_ban',
    )
    const traces = [
      { type: 'scatter', name: 'raw', x: [1], y: [9], showlegend: false, hoverinfo: 'skip' },
      {
        type: 'scatter',
        name: 'attention, "unweighted"',
        x: [1, 2],
        y: [0.5, 0.25],
        customdata: [
          ['tanh', 1],
          ['tanh', 2],
        ],
      },
    ]
    expect(tracesToCsv(traces)).toBe(
      'series,x,y,stage,within_stage\n"attention, ""unweighted""",1,0.5,tanh,1\n"attention, ""unweighted""",2,0.25,tanh,2\n',
    )
    const heat = tracesToCsv([{ type: 'heatmap', name: 'gates', x: [0, 1], y: ['b1'], z: [[0.4, 0.6]] }])
    expect(heat).toBe('series,x,y,z\ngates,0,b1,0.4\ngates,1,b1,0.6\n')
    expect(JSON.parse(tracesToJson('Loss', traces))).toEqual({
      figure: 'Loss',
      traces: [
        {
          name: 'attention, "unweighted"',
          type: 'scatter',
          x: [1, 2],
          y: [0.5, 0.25],
          customdata: [
            ['tanh', 1],
            ['tanh', 2],
          ],
        },
      ],
    })
  })
})

describe('the new-run form', () => {
  const base = makeRunConfig({ preset: 'quick' })
  const knobs: Knobs = {
    epochs: '2',
    stepsPerEpoch: '100',
    batchSize: '32',
    width: '0.125',
    learningRate: 'preset',
    testLimit: '1000',
    probes: '8',
    seed: '1',
  }
  const overrides = (numbers: Partial<Record<keyof Knobs, number>>) =>
    base.stages.flatMap((_, i) => [
      ...(numbers.epochs !== undefined ? [{ key: `stages.${i}.epochs`, value: numbers.epochs }] : []),
      ...(numbers.batchSize !== undefined
        ? [{ key: `stages.${i}.batchSize`, value: numbers.batchSize }]
        : []),
    ])

  it('names every field that needs a change, in plain words, all at once', () => {
    const { problems } = knobProblems(
      { ...knobs, epochs: '0', batchSize: '2.5', width: 'wide', probes: '' },
      base,
      overrides,
    )
    expect(problems).toEqual({
      epochs: 'Epochs per stage must be at least 1',
      batchSize: 'Batch size must be a whole number',
      width: 'Width multiplier: “wide” is not a number',
      probes: 'Probe images is empty: enter a number',
    })
    expect(knobProblems(knobs, base, overrides).problems).toEqual({})
  })

  it('shows the problems at their fields and keeps the start button off', async () => {
    const api = apiDouble({ datasets: [dataset] })
    const store = createWorkbenchStore(api, { schedule: (apply) => apply() })
    render(
      <StoreContext.Provider value={store}>
        <App />
      </StoreContext.Provider>,
    )
    act(() => store.getState().navigate('new-run'))
    await act(async () => {})
    const field = screen.getByLabelText(/^Epochs per stage/)
    fireEvent.change(field, { target: { value: '0' } })
    fireEvent.change(screen.getByLabelText(/^Seed/), { target: { value: '-1' } })
    expect(field.getAttribute('aria-invalid')).toBe('true')
    expect(screen.getByText('Epochs per stage must be at least 1')).toBeTruthy()
    expect(screen.getByText('Seed must be at least 0')).toBeTruthy()
    expect(screen.getByRole('alert').textContent).toMatch(/2 fields need a change/)
    expect(screen.queryByText(/stages\.0/)).toBeNull()
    expect((screen.getByRole('button', { name: 'Start training' }) as HTMLButtonElement).disabled).toBe(true)
    fireEvent.change(field, { target: { value: '2' } })
    fireEvent.change(screen.getByLabelText(/^Seed/), { target: { value: '3' } })
    expect(screen.queryByText(/need a change/)).toBeNull()
    const estimate = screen.getByLabelText('Time estimate')
    expect(within(estimate).getByRole('button', { name: 'Measure on this machine' })).toBeTruthy()
  })
})
