import { useMemo, useState } from 'react'
import { AttentionLossPlot } from '../components/AttentionLossPlot'
import { MetricPlot, type MetricLine } from '../components/MetricPlot'
import { StageChain } from '../components/StageChain'
import { liveProgress, runCurves, timeLeft } from '../../../shared/figures/curves'
import { describeDistributed } from '../../../shared/runs'
import { figureName } from '../lib/download'
import { formatBytes, formatDuration, percent } from '../lib/format'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'
import { SmoothingSlider } from '../components/SmoothingSlider'

const ACCURACY: MetricLine[] = [
  { metric: 'testTop1', color: '#4c78a8' },
  { metric: 'testTop5', color: '#54a24b' },
  { metric: 'trainTop1', color: '#4c78a8', dash: 'dot' },
  { metric: 'trainTop5', color: '#54a24b', dash: 'dot' },
]
const CROSS_ENTROPY: MetricLine[] = [{ metric: 'crossEntropy', color: '#4c78a8' }]
const TOTAL: MetricLine[] = [{ metric: 'total', color: '#888888' }]
const RATE: MetricLine[] = [{ metric: 'learningRate', color: '#b279a2' }]
const THROUGHPUT: MetricLine[] = [{ metric: 'imagesPerSecond', color: '#72b7b2' }]
const FLIPS: MetricLine[] = [{ metric: 'flipRatio', color: '#e45756' }]
const ACCURACY_AXIS = { range: [0, 1] }

export function DashboardView({ view }: { view: RunView }) {
  const { run, log } = view
  const about = useWorkbench((s) => s.about)
  const runAction = useWorkbench((s) => s.runAction)
  const actionError = useWorkbench((s) => s.actionError)
  const exportStage = useWorkbench((s) => s.exportStage)
  const exported = useWorkbench((s) => s.exports[run.id] ?? null)
  // Another process or machine trains an attached run: this workbench follows it, and can only forget it.
  const attached = useWorkbench((s) => s.attachedIds.includes(run.id))
  const attachedFrom = useWorkbench((s) => s.attachedFolders[run.id] ?? null)
  // The last stage, once finished, can be bit-packed when it is fully binary (sign activations and weights).
  const last = run.config.stages.at(-1)
  const exportable =
    run.status === 'finished' && last?.student.activation === 'sign' && last.student.weights === 'sign'
      ? last.name
      : null
  const [smoothing, setSmoothing] = useState(0.6)
  const [focus, setFocus] = useState<string | null>(null)
  const [confirmRemove, setConfirmRemove] = useState(false)
  const curves = useMemo(() => runCurves(run.config, log), [run.config, log])
  const training = run.status === 'running' || run.status === 'paused'
  const progress = training ? liveProgress(run, curves) : null
  const left = training ? timeLeft(run, run.config, curves) : null
  const env = run.environment
  const backend =
    env.backend ?? (run.status === 'running' && env.engine === 'tfjs' ? about?.backend : null) ?? null

  // Components that are not part of a stage's loss are 0 there: left out, not drawn as a flat line.
  const skip = (key: 'attention' | 'distillation') =>
    run.config.stages.filter((s) => s.losses[key].weight === 0).map((s) => s.name)
  const attentionLines = useMemo(
    (): MetricLine[] => [{ metric: 'attention', color: '#f58518', skipStages: skip('attention') }],
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [run.config],
  )
  const kdLines = useMemo(
    (): MetricLine[] => [{ metric: 'distillation', color: '#54a24b', skipStages: skip('distillation') }],
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [run.config],
  )
  const weights = (key: 'attention' | 'distillation') =>
    run.config.stages
      .filter((s) => s.losses[key].weight > 0)
      .map((s) => `×${s.losses[key].weight} in ${s.name}`)
      .join(', ') || 'not used in any stage'
  const name = (what: string) => figureName(run.id, 'dashboard', what, focus ?? 'all-stages')
  const common = { curves, stage: focus, smoothing }
  const stepsKnown = curves.steps.length > 0

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
            {attached && (
              <>
                {' '}
                ·{' '}
                <span className="badge">
                  attached{attachedFrom ? ` from ${attachedFrom}` : ''}: written elsewhere, followed read-only
                </span>
              </>
            )}
          </p>
        </div>
        <span className={`status status-${run.status}`} aria-label="Run status">
          {run.status}
        </span>
        {!attached && run.status === 'running' && (
          <button type="button" onClick={() => void runAction('pauseRun', run.id)}>
            Pause
          </button>
        )}
        {!attached &&
          (run.status === 'paused' ||
            run.status === 'interrupted' ||
            run.status === 'stopped' ||
            run.status === 'failed') && (
            <button type="button" className="primary" onClick={() => void runAction('resumeRun', run.id)}>
              Resume
            </button>
          )}
        {!attached && (training || run.status === 'queued') && (
          <button type="button" className="danger" onClick={() => void runAction('stopRun', run.id)}>
            Stop
          </button>
        )}
        {exportable && (
          <button type="button" onClick={() => void exportStage(run.id, exportable)}>
            Export binary model
          </button>
        )}
        {attached ? (
          <button type="button" onClick={() => setConfirmRemove(true)}>
            Detach
          </button>
        ) : (
          !training &&
          run.status !== 'queued' && (
            <button type="button" onClick={() => setConfirmRemove(true)}>
              Delete
            </button>
          )
        )}
      </header>
      {exported && (
        <p className="muted small" role="status" aria-label="Export">
          Exported to <code>{exported.file}</code>: {formatBytes(exported.fileBytes)} (minimum{' '}
          {formatBytes(exported.minimumBytes)}; the float32 model is {formatBytes(exported.float32Bytes)},{' '}
          {(exported.float32Bytes / exported.fileBytes).toFixed(1)}× larger)
        </p>
      )}
      {confirmRemove && attached && (
        <div className="confirm" role="alertdialog" aria-label="Confirm detach">
          <span>
            Stop showing run {run.name} here? Its folder is left as it is, and whatever writes it goes on.
          </span>
          <button type="button" onClick={() => void runAction('removeRun', run.id)}>
            Detach run
          </button>
          <button type="button" autoFocus onClick={() => setConfirmRemove(false)}>
            Keep it
          </button>
        </div>
      )}
      {confirmRemove && !attached && (
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
      <p className="small" aria-label="Where it trains">
        Engine <strong>{env.engine}</strong>
        {env.device ? (
          <>
            {' '}
            on <strong>{env.device.kind}</strong>
            {env.device.description ? ` (${env.device.description})` : ''}
          </>
        ) : (
          <span className="muted"> · device not recorded yet</span>
        )}
        {env.distributed && <> · data-parallel: {describeDistributed(env.distributed)}</>}
        {backend && env.engine === 'tfjs' && (
          <>
            {' '}
            · tfjs backend {backend.backend}
            {backend.adapter ? ` on ${backend.adapter.description || backend.adapter.device}` : ''}
            {backend.slow && (
              <span className="warning" role="note">
                {' '}
                — {backend.adapter?.isSoftware ? 'software adapter: ' : ''}training runs on the CPU here,
                expect small presets only
              </span>
            )}
          </>
        )}
      </p>
      {training && (
        <p className="progress-line" role="status" aria-label="Progress">
          {progress ? (
            <>
              <span>
                Stage <strong>{progress.stage}</strong> ({progress.stageIndex + 1}/{run.stages.length})
              </span>
              <span>
                epoch {progress.epoch + 1}/{progress.epochs}
              </span>
              <span>
                step {progress.stepInEpoch}
                {progress.stepsPerEpoch ? `/${progress.stepsPerEpoch}` : ''} of the epoch
              </span>
              {curves.steps.at(-1) && <span>{curves.steps.at(-1)!.imagesPerSecond.toFixed(0)} images/s</span>}
              {left && (
                <span title={left.basis}>
                  about {formatDuration(left.seconds)} left
                  {left.uncounted.length ? ` (not counting ${left.uncounted.join(', ')}: size unknown)` : ''}
                </span>
              )}
            </>
          ) : (
            <span className="muted">{run.status === 'paused' ? 'Paused.' : 'Starting: no step yet.'}</span>
          )}
        </p>
      )}
      <StageChain config={run.config} statuses={statuses} />
      <div className="timeline" aria-label="Stage timeline">
        {run.stages.map((s) => {
          // Step-level within the stage being trained; epochs with a checkpoint elsewhere.
          const live = progress?.stage === s.name && progress.stepsTotal
          const fraction =
            s.status === 'finished'
              ? 1
              : live
                ? progress.stepsDone / progress.stepsTotal!
                : s.epochsCompleted / Math.max(1, s.epochs)
          return (
            <div key={s.name} className={`timeline-stage stage-${s.status}`} style={{ flexGrow: s.epochs }}>
              <div className="timeline-fill" style={{ width: `${Math.min(100, 100 * fraction)}%` }} />
              <span>
                {s.name} · {s.epochsCompleted}/{s.epochs}
                {live ? ` · ${Math.round(100 * fraction)}%` : ''}
              </span>
            </div>
          )
        })}
      </div>
      {curves.steps.length === 0 && curves.epochs.length === 0 && (
        <p className="muted">
          {run.status === 'queued'
            ? 'Waiting in the queue…'
            : 'No metrics yet: they appear after the first steps.'}
        </p>
      )}
      {(stepsKnown || curves.epochs.length > 0) && (
        <div className="toolbar" role="group" aria-label="Curve options">
          <span className="segmented" role="group" aria-label="Stages shown">
            <button
              type="button"
              className="chip"
              aria-pressed={focus === null}
              onClick={() => setFocus(null)}
            >
              all stages
            </button>
            {run.config.stages.map((s) => (
              <button
                key={s.name}
                type="button"
                className="chip"
                aria-pressed={focus === s.name}
                onClick={() => setFocus(s.name)}
              >
                {s.name}
              </button>
            ))}
          </span>
          <SmoothingSlider value={smoothing} onChange={setSmoothing} />
          <span className="muted small">
            Per-step curves: exponential moving average (debiased, within each stage); raw values faint.
          </span>
        </div>
      )}
      <div className="plots">
        <MetricPlot
          {...common}
          lines={ACCURACY}
          title="Accuracy (test solid, train dotted)"
          yaxis={ACCURACY_AXIS}
          testId="accuracy-plot"
          fileName={name('accuracy')}
          height={300}
        />
        <MetricPlot
          {...common}
          lines={attentionLines}
          title="Attention loss (unweighted, per step)"
          note={<>L_att of the batch; weight {weights('attention')}.</>}
          testId="attention-step-plot"
          fileName={name('attention-loss')}
          empty={<p className="muted small">No stage of this run has attention matching, or no step yet.</p>}
        />
        <AttentionLossPlot view={view} curves={curves} stage={focus} fileName={name('attention-per-point')} />
        <MetricPlot
          {...common}
          lines={CROSS_ENTROPY}
          title="Cross-entropy on labels (per step)"
          testId="loss-plot"
          fileName={name('cross-entropy')}
        />
        <MetricPlot
          {...common}
          lines={kdLines}
          title="Logit distillation (unweighted, per step)"
          note={<>Weight {weights('distillation')}.</>}
          testId="kd-plot"
          fileName={name('kd')}
          empty={<p className="muted small">No stage of this run has logit distillation, or no step yet.</p>}
        />
        <MetricPlot
          {...common}
          lines={TOTAL}
          title="Total loss (the weighted sum minimised)"
          testId="total-plot"
          fileName={name('total-loss')}
        />
        <MetricPlot {...common} lines={RATE} title="Learning rate" fileName={name('learning-rate')} />
        <MetricPlot {...common} lines={THROUGHPUT} title="Throughput" fileName={name('throughput')} />
        {curves.epochs.some((e) => e.flipRatio !== null) && (
          <MetricPlot
            {...common}
            lines={FLIPS}
            title="Latent-weight sign flips per epoch"
            note="Mean over binary-weight layers; only stages with binary weights."
            testId="flips-plot"
            fileName={name('sign-flips')}
          />
        )}
      </div>
    </div>
  )
}
