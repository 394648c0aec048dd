import { useMemo, useState } from 'react'
import type { Trace } from 'plotly.js-dist-min'
import { Plot } from '../components/Plot'
import { StageChain } from '../components/StageChain'
import { capPoints, emaSmooth } from '../../../shared/figures/series'
import { etaSeconds, runCurves, stageMarks, type RunCurves } from '../../../shared/figures/curves'
import { formatDuration, percent } from '../lib/format'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'

/** One per-step series of the run, capped to what a plot draws well, as a single line. */
function stepLine(
  curves: RunCurves,
  key: 'learningRate' | 'imagesPerSecond',
  name: string,
  hovertemplate: string,
): Trace[] {
  const points = capPoints({ x: curves.steps.map((s) => s.x), y: curves.steps.map((s) => s[key]) })
  return [{ type: 'scatter', mode: 'lines', name, x: points.x, y: points.y, hovertemplate }]
}

/** The layout of a single-line plot over steps, with the stage boundaries marked. */
function stepLayout(yaxis: Record<string, unknown>, marks: ReturnType<typeof stageMarks>) {
  return { xaxis: { title: { text: 'step' } }, yaxis, showlegend: false, ...marks }
}

const kilobytes = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`

export function DashboardView({ view }: { view: RunView }) {
  const { run, log } = view
  const about = useWorkbench((s) => s.about)
  const runAction = useWorkbench((s) => s.runAction)
  const actionError = useWorkbench((s) => s.actionError)
  const exportStage = useWorkbench((s) => s.exportStage)
  const exported = useWorkbench((s) => s.exports[run.id] ?? null)
  // The last stage, once finished, can be bit-packed when it is fully binary (sign activations and weights).
  const last = run.config.stages.at(-1)
  const exportable =
    run.status === 'finished' && last?.student.activation === 'sign' && last.student.weights === 'sign'
      ? last.name
      : null
  const [smoothing, setSmoothing] = useState(0.6)
  const [confirmRemove, setConfirmRemove] = useState(false)
  const curves = useMemo(() => runCurves(run.config, log), [run.config, log])
  const eta = etaSeconds(run, curves)
  const backend = run.environment.backend ?? (run.status === 'running' ? about?.backend : null) ?? null
  const training = run.status === 'running' || run.status === 'paused'

  const accuracy = useMemo(() => {
    const x = curves.epochs.map((e) => e.x)
    const line = (name: string, y: number[], dash: string, color: string): Trace => ({
      type: 'scatter',
      mode: 'lines+markers',
      name,
      x,
      y,
      line: { dash, color },
      hovertemplate: `${name}: %{y:.1%} (epoch %{x})<extra></extra>`,
    })
    return [
      line(
        'test top-1',
        curves.epochs.map((e) => e.testTop1),
        'solid',
        '#4c78a8',
      ),
      line(
        'test top-5',
        curves.epochs.map((e) => e.testTop5),
        'solid',
        '#54a24b',
      ),
      line(
        'train top-1',
        curves.epochs.map((e) => e.trainTop1),
        'dot',
        '#4c78a8',
      ),
      line(
        'train top-5',
        curves.epochs.map((e) => e.trainTop5),
        'dot',
        '#54a24b',
      ),
    ]
  }, [curves])
  const epochMarks = useMemo(() => stageMarks(curves, 'epoch'), [curves])
  const accuracyLayout = useMemo(
    () => ({
      xaxis: {
        title: { text: 'epoch (across stages)' },
        range: [
          0.5,
          Math.max(
            1,
            curves.stages.at(-1) ? curves.stages.at(-1)!.epochOffset + curves.stages.at(-1)!.epochs : 1,
          ) + 0.5,
        ],
      },
      yaxis: { title: { text: 'accuracy' }, tickformat: '.0%', range: [0, 1] },
      legend: { orientation: 'h', y: -0.3 },
      margin: { l: 56, r: 16, t: 28, b: 96 },
      ...epochMarks,
    }),
    [curves, epochMarks],
  )

  const stepMarks = useMemo(() => stageMarks(curves, 'step'), [curves])
  const losses = useMemo(() => {
    const traces: Trace[] = []
    const components = [
      ['crossEntropy', 'cross-entropy', '#4c78a8'],
      ['attention', 'attention', '#f58518'],
      ['distillation', 'KD', '#54a24b'],
      ['total', 'total', '#888888'],
    ] as const
    for (const [key, name, color] of components) {
      const raw = { x: curves.steps.map((s) => s.x), y: curves.steps.map((s) => s[key]) }
      if (key !== 'crossEntropy' && key !== 'total' && raw.y.every((v) => v === 0)) continue
      const shown = capPoints(raw)
      const smooth = capPoints({ x: raw.x, y: emaSmooth(raw.y, smoothing) })
      if (smoothing > 0)
        traces.push({
          type: 'scatter',
          mode: 'lines',
          name: `${name} (raw)`,
          x: shown.x,
          y: shown.y,
          line: { color, width: 1 },
          opacity: 0.25,
          showlegend: false,
          hoverinfo: 'skip',
        })
      traces.push({
        type: 'scatter',
        mode: 'lines',
        name,
        x: smooth.x,
        y: smooth.y,
        line: { color, width: 2 },
        hovertemplate: `${name}: %{y:.4f} (step %{x})<extra></extra>`,
      })
    }
    return traces
  }, [curves, smoothing])
  const lossLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'step (across stages)' } },
      yaxis: { title: { text: 'loss (nats)' }, rangemode: 'tozero' },
      legend: { orientation: 'h', y: -0.3 },
      margin: { l: 56, r: 16, t: 28, b: 96 },
      ...stepMarks,
    }),
    [stepMarks],
  )
  const schedule = useMemo(
    () => stepLine(curves, 'learningRate', 'learning rate', 'lr %{y:.2e} (step %{x})<extra></extra>'),
    [curves],
  )
  const scheduleLayout = useMemo(
    () => stepLayout({ title: { text: 'learning rate' }, exponentformat: 'e' }, stepMarks),
    [stepMarks],
  )
  const flips = useMemo(
    () => [
      {
        type: 'scatter',
        mode: 'lines+markers',
        name: 'sign flips',
        x: curves.epochs.map((e) => e.x),
        y: curves.epochs.map((e) => e.flipRatio),
        connectgaps: false,
        hovertemplate: '%{y:.3%} of latent weights changed sign (epoch %{x})<extra></extra>',
      },
    ],
    [curves],
  )
  const flipsLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'epoch (across stages)' } },
      yaxis: {
        title: { text: 'weights flipped' },
        tickformat: '.1%',
        rangemode: 'tozero',
      },
      showlegend: false,
      ...epochMarks,
    }),
    [epochMarks],
  )
  const throughput = useMemo(
    () => stepLine(curves, 'imagesPerSecond', 'images/s', '%{y:.0f} images/s (step %{x})<extra></extra>'),
    [curves],
  )
  const throughputLayout = useMemo(
    () => stepLayout({ title: { text: 'images / s' }, rangemode: 'tozero' }, stepMarks),
    [stepMarks],
  )

  const statuses = Object.fromEntries(
    run.stages.map((s) => [
      s.name,
      `${s.status} · ${s.epochsCompleted}/${s.epochs} epochs${s.testTop1 !== null ? ` · top-1 ${percent(s.testTop1)}` : ''}`,
    ]),
  )

  return (
    <div className="dashboard">
      <header className="row run-header">
        <div className="grow">
          <h2>{run.name}</h2>
          <p className="muted small">
            <code>{run.id}</code> · {run.config.pipeline} · {run.config.preset} · dataset{' '}
            <code>{run.config.data.dataset}</code>
          </p>
        </div>
        <span className={`status status-${run.status}`} aria-label="Run status">
          {run.status}
        </span>
        {run.status === 'running' && (
          <button type="button" onClick={() => void runAction('pauseRun', run.id)}>
            Pause
          </button>
        )}
        {(run.status === 'paused' ||
          run.status === 'interrupted' ||
          run.status === 'stopped' ||
          run.status === 'failed') && (
          <button type="button" className="primary" onClick={() => void runAction('resumeRun', run.id)}>
            Resume
          </button>
        )}
        {(training || run.status === 'queued') && (
          <button type="button" className="danger" onClick={() => void runAction('stopRun', run.id)}>
            Stop
          </button>
        )}
        {exportable && (
          <button type="button" onClick={() => void exportStage(run.id, exportable)}>
            Export binary model
          </button>
        )}
        {!training && run.status !== 'queued' && (
          <button type="button" onClick={() => setConfirmRemove(true)}>
            Delete
          </button>
        )}
      </header>
      {exported && (
        <p className="muted small" role="status" aria-label="Export">
          Exported to <code>{exported.file}</code>: {kilobytes(exported.fileBytes)} (minimum{' '}
          {kilobytes(exported.minimumBytes)}; the float32 model is {kilobytes(exported.float32Bytes)},{' '}
          {(exported.float32Bytes / exported.fileBytes).toFixed(1)}× larger)
        </p>
      )}
      {confirmRemove && (
        <div className="confirm" role="alertdialog" aria-label="Confirm delete">
          <span>Delete run {run.name} with its log, snapshots and checkpoints?</span>
          <button type="button" className="danger" onClick={() => void runAction('removeRun', run.id)}>
            Delete run
          </button>
          <button type="button" autoFocus onClick={() => setConfirmRemove(false)}>
            Keep it
          </button>
        </div>
      )}
      {actionError && (
        <p className="error" role="alert">
          {actionError}
        </p>
      )}
      {run.error && (
        <p className={run.status === 'failed' ? 'error' : 'warning'} role="alert">
          {run.error}
        </p>
      )}
      <p className="small">
        Adapter:{' '}
        {backend ? (
          <>
            <strong>{backend.backend}</strong>
            {backend.adapter ? ` on ${backend.adapter.description || backend.adapter.device}` : ''}
            {backend.slow && (
              <span className="warning" role="note">
                {' '}
                — {backend.adapter?.isSoftware ? 'software adapter: ' : ''}training runs on the CPU here,
                expect small presets only
              </span>
            )}
          </>
        ) : (
          <span className="muted">not recorded yet</span>
        )}
        {eta !== null && training && <> · about {formatDuration(eta)} left</>}
      </p>
      <StageChain config={run.config} statuses={statuses} />
      <div className="timeline" aria-label="Stage timeline">
        {run.stages.map((s) => (
          <div key={s.name} className={`timeline-stage stage-${s.status}`} style={{ flexGrow: s.epochs }}>
            <div
              className="timeline-fill"
              style={{ width: `${(100 * s.epochsCompleted) / Math.max(1, s.epochs)}%` }}
            />
            <span>
              {s.name} · {s.epochsCompleted}/{s.epochs}
            </span>
          </div>
        ))}
      </div>
      {curves.steps.length === 0 && curves.epochs.length === 0 && (
        <p className="muted">
          {run.status === 'queued'
            ? 'Waiting in the queue…'
            : 'No metrics yet: they appear after the first steps.'}
        </p>
      )}
      <div className="plots">
        <figure>
          <figcaption>Accuracy (top-1/top-5, train dotted, test solid)</figcaption>
          <Plot
            data={accuracy}
            layout={accuracyLayout}
            label="Accuracy curves"
            testId="accuracy-plot"
            height={330}
          />
        </figure>
        <figure>
          <figcaption className="row">
            <span className="grow">Loss components</span>
            <label className="inline small">
              Smoothing {smoothing.toFixed(2)}
              <input
                type="range"
                min={0}
                max={0.99}
                step={0.01}
                value={smoothing}
                onChange={(e) => setSmoothing(Number(e.target.value))}
                aria-label="Smoothing"
              />
            </label>
          </figcaption>
          <Plot data={losses} layout={lossLayout} label="Loss components" testId="loss-plot" height={330} />
        </figure>
        <figure>
          <figcaption>Learning rate</figcaption>
          <Plot data={schedule} layout={scheduleLayout} height={220} label="Learning rate" />
        </figure>
        <figure>
          <figcaption>Throughput</figcaption>
          <Plot data={throughput} layout={throughputLayout} height={220} label="Throughput" />
        </figure>
        {curves.epochs.some((e) => e.flipRatio !== null) && (
          <figure>
            <figcaption>Latent-weight sign flips per epoch (binary-architecture stages)</figcaption>
            <Plot data={flips} layout={flipsLayout} height={220} label="Sign flips" testId="flips-plot" />
          </figure>
        )}
      </div>
    </div>
  )
}
