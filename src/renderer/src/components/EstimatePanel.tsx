import { useState } from 'react'
import type { RunEstimate } from '../../../shared/api'
import type { RunConfig } from '../../../shared/run-config'
import { formatDuration } from '../lib/format'
import { useWorkbench } from '../store/context'

const DAY = 24 * 3600

/**
 * How long the run would train here, before it starts: step times measured on this machine's engine (a few
 * steps of each stage's networks on synthetic inputs), scaled to the config's steps. Asked for, not automatic:
 * measuring occupies the worker for seconds (a minute for the paper presets on a CPU backend).
 */
export function EstimatePanel({ config }: { config: RunConfig }) {
  const estimateRun = useWorkbench((s) => s.estimateRun)
  const backend = useWorkbench((s) => s.about?.backend ?? null)
  const key = JSON.stringify(config)
  const [state, setState] = useState<{
    key: string
    estimate: RunEstimate | null
    error: string | null
    measuring: boolean
  } | null>(null)
  const current = state?.key === key ? state : null
  const measure = () => {
    setState({ key, estimate: null, error: null, measuring: true })
    estimateRun(config).then(
      (estimate) => setState({ key, estimate, error: null, measuring: false }),
      (error: unknown) =>
        setState({ key, estimate: null, error: (error as Error).message, measuring: false }),
    )
  }
  const estimate = current?.estimate ?? null
  const totalSteps = config.stages.reduce((n, s) => n + s.epochs * s.stepsPerEpoch, 0)
  return (
    <section className="panel" aria-label="Time estimate">
      <div className="row">
        <strong className="grow">How long it would train here</strong>
        <button type="button" onClick={measure} disabled={current?.measuring}>
          {current?.measuring ? 'Measuring…' : estimate ? 'Measure again' : 'Measure on this machine'}
        </button>
      </div>
      {config.preset !== 'quick' && config.engine === 'tfjs' && backend?.slow && !estimate && (
        <p className="warning small" role="note">
          The {config.preset} preset trains for {config.stages[0]?.epochs} epochs per stage over the whole
          training split, and the tfjs engine trains on the CPU here ({backend.backend}): expect days to
          months. Measure before starting.
        </p>
      )}
      {current?.error && (
        <p className="error small" role="alert">
          Could not measure: {current.error}
        </p>
      )}
      {!estimate && !current?.error && (
        <p className="muted small">
          Times a few training steps of each stage here
          {totalSteps === 0 ? '' : `, then scales them to ${totalSteps.toLocaleString()} steps`}.
        </p>
      )}
      {estimate && (
        <>
          <p className={estimate.totalSeconds > DAY ? 'warning' : ''} role="status" aria-label="Estimate">
            About <strong>{formatDuration(estimate.totalSeconds)}</strong> of training steps on{' '}
            {estimate.engine} ({estimate.device})
            {estimate.totalSeconds > DAY
              ? ` — ${(estimate.totalSeconds / DAY).toFixed(estimate.totalSeconds > 10 * DAY ? 0 : 1)} days: choose a smaller budget (quick preset, fewer epochs or steps, a smaller width) or a faster engine`
              : ''}
            ; evaluation, probes and checkpoints come on top.
          </p>
          <div className="table-scroll">
            <table className="table numeric" aria-label="Estimate per stage">
              <thead>
                <tr>
                  <th>Stage</th>
                  <th>ms per step</th>
                  <th>steps</th>
                  <th>time</th>
                </tr>
              </thead>
              <tbody>
                {estimate.stages.map((s) => (
                  <tr key={s.stage}>
                    <td>{s.stage}</td>
                    <td>{s.stepMs.toFixed(0)}</td>
                    <td>{s.steps.toLocaleString()}</td>
                    <td>{formatDuration(s.seconds)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <p className="muted small">Measured: {estimate.basis}.</p>
        </>
      )}
    </section>
  )
}
