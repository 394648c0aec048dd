import { useEffect, useMemo, useState } from 'react'
import type { Trace } from 'plotly.js-cartesian-dist-min'
import { PlotFigure } from '../components/Plot'
import { METRICS, metricSegments, runCurves, stageRole, type Metric } from '../../../shared/figures/curves'
import { attentionLossOf, gateSpread } from '../../../shared/figures/maps'
import type { AttentionRecord, GateRecord } from '../../../shared/records'
import { figureName } from '../lib/download'
import { percent } from '../lib/format'
import { snapshotsInOrder } from '../lib/snapshots'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'
import { SmoothingSlider } from '../components/SmoothingSlider'

const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#ff9da6', '#9d755d']

/** Metrics read from the snapshots rather than the log: one value per snapshot (stage, epochs completed). */
const SNAPSHOT_METRICS = {
  attentionProbe: {
    label: 'attention loss over the probe images (from the stored maps)',
    unit: 'L_att (probe mean)',
    format: '.4g',
  },
  gateSpread: {
    label: 'gate spread: std of mean gates over channels, mean over convolutions',
    unit: 'std of gates',
    format: '.4f',
  },
} as const
type SnapshotMetric = keyof typeof SNAPSHOT_METRICS
type CompareMetric = Metric | SnapshotMetric

const isSnapshotMetric = (m: CompareMetric): m is SnapshotMetric => m in SNAPSHOT_METRICS

interface Point {
  role: string
  stage: string
  /** Epoch or step within the stage (1-based). */
  x: number
  y: number
}

/** One value per snapshot for the snapshot metrics, per run, read through the store's cache. */
function useSnapshotMetric(views: RunView[], metric: CompareMetric) {
  const readSnapshot = useWorkbench((s) => s.readSnapshot)
  const [values, setValues] = useState<{ key: string; byRun: Record<string, Point[]> } | null>(null)
  const kind = metric === 'attentionProbe' ? 'attention' : 'gates'
  const key = isSnapshotMetric(metric)
    ? `${metric}|${views.map((v) => `${v.run.id}:${v.snapshots.length}`).join(',')}`
    : null
  useEffect(() => {
    if (!key) return
    let live = true
    Promise.all(
      views.map(async (view) => {
        const refs = snapshotsInOrder(view, kind)
        const records = await Promise.all(refs.map((ref) => readSnapshot(view.run.id, ref)))
        const points: Point[] = []
        for (const record of records) {
          const spec = view.run.config.stages.find((s) => s.name === record.stage)
          if (!spec) continue
          const role = stageRole(spec.student).key
          if (record.kind === 'attention') {
            const loss = attentionLossOf(record as AttentionRecord)
            if (loss) points.push({ role, stage: record.stage, x: record.epochsCompleted, y: loss.total })
          } else {
            const gates = (record as GateRecord).gates
            if (gates.length)
              points.push({
                role,
                stage: record.stage,
                x: record.epochsCompleted,
                y: gates.reduce((sum, g) => sum + gateSpread(g.mean), 0) / gates.length,
              })
          }
        }
        return [view.run.id, points] as const
      }),
    ).then(
      (entries) => live && setValues({ key, byRun: Object.fromEntries(entries) }),
      () => live && setValues({ key, byRun: {} }),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, readSnapshot])
  return values?.key === key ? values.byRun : null
}

export function CompareView() {
  const runs = useWorkbench((s) => s.runs)
  const loadRuns = useWorkbench((s) => s.loadRuns)
  const ids = useWorkbench((s) => s.compareIds)
  const toggle = useWorkbench((s) => s.toggleCompare)
  const histories = useWorkbench((s) => s.histories)
  const loadHistory = useWorkbench((s) => s.loadHistory)
  const [metric, setMetric] = useState<CompareMetric>('testTop1')
  const [smoothing, setSmoothing] = useState(0.8)
  const [log, setLog] = useState(false)
  useEffect(() => {
    void loadRuns()
  }, [loadRuns])
  useEffect(() => {
    for (const id of ids) if (!histories[id]) void loadHistory(id)
  }, [ids, histories, loadHistory])

  const picked = useMemo(
    () => ids.map((id) => histories[id]).filter((h) => h !== undefined),
    [ids, histories],
  )
  // Stages aligned by what they train (their role), in the order they first appear across the runs.
  const roles = useMemo(() => {
    const out: { key: string; label: string; stages: Set<string> }[] = []
    for (const h of picked)
      for (const stage of h.run.config.stages) {
        const role = stageRole(stage.student)
        let entry = out.find((r) => r.key === role.key)
        if (!entry) out.push((entry = { ...role, stages: new Set() }))
        entry.stages.add(stage.name)
      }
    // In the order of the method's chain, whichever run was picked first.
    const rank = (key: string) => {
      const i = ['real', 'identity/real', 'tanh/real', 'sign/real', 'sign/sign'].indexOf(key)
      return i < 0 ? 99 : i
    }
    return out.sort((a, b) => rank(a.key) - rank(b.key))
  }, [picked])
  const fromSnapshots = useSnapshotMetric(picked, metric)
  const info = useMemo(
    () => (isSnapshotMetric(metric) ? { ...SNAPSHOT_METRICS[metric], axis: 'epoch' } : METRICS[metric]),
    [metric],
  )

  const traces = useMemo((): Trace[] => {
    const out: Trace[] = []
    picked.forEach((history, i) => {
      const color = PALETTE[i % PALETTE.length]
      const roleOf = (stage: string) => {
        const spec = history.run.config.stages.find((s) => s.name === stage)
        return spec ? stageRole(spec.student).key : ''
      }
      let points: Point[]
      if (isSnapshotMetric(metric)) points = fromSnapshots?.[history.run.id] ?? []
      else {
        const curves = runCurves(history.run.config, history.log)
        const smooth = METRICS[metric].axis === 'step' ? smoothing : 0
        // A loss component is 0 in the stages whose loss does not use it: those are left out, not drawn flat.
        const unused = (stage: string) => {
          const spec = history.run.config.stages.find((s) => s.name === stage)
          return (
            (metric === 'attention' && spec?.losses.attention.weight === 0) ||
            (metric === 'distillation' && spec?.losses.distillation.weight === 0)
          )
        }
        points = metricSegments(curves, metric, { smoothing: smooth })
          .filter((segment) => !unused(segment.stage))
          .flatMap((segment) =>
            segment.local.map((x, k) => ({
              role: roleOf(segment.stage),
              stage: segment.stage,
              x,
              y: segment.y[k]!,
            })),
          )
      }
      roles.forEach((role, c) => {
        const mine = points.filter((p) => p.role === role.key)
        if (mine.length === 0) return
        const axis = c === 0 ? '' : String(c + 1)
        out.push({
          type: 'scatter',
          mode: info.axis === 'epoch' ? 'lines+markers' : 'lines',
          name: history.run.name,
          legendgroup: history.run.id,
          showlegend: !out.some((t) => t.legendgroup === history.run.id),
          x: mine.map((p) => p.x),
          y: mine.map((p) => p.y),
          customdata: mine.map((p) => [p.stage, p.x]),
          xaxis: `x${axis}`,
          yaxis: `y${axis}`,
          line: { color, width: 2 },
          marker: { size: 5 },
          hovertemplate: `${history.run.name}<br>stage %{customdata[0]}, ${info.axis} %{customdata[1]}: %{y:${info.format}}<extra></extra>`,
        })
      })
    })
    return out
  }, [picked, metric, smoothing, roles, fromSnapshots, info])

  const epochTick = Math.max(
    1,
    Math.ceil(Math.max(1, ...picked.flatMap((h) => h.run.config.stages.map((s) => s.epochs))) / 8),
  )
  const layout = useMemo(() => {
    const n = Math.max(1, roles.length)
    const gap = 0.04
    const width = (1 - gap * (n - 1)) / n
    const out: Record<string, unknown> = {
      legend: { orientation: 'h', yref: 'container', y: 0, yanchor: 'bottom' },
      margin: { l: 64, r: 16, t: 78, b: 90 },
      annotations: roles.map((role, c) => ({
        text: `<b>${role.label.replace(', ', '<br>')}</b><br><i>${[...role.stages].join(', ')}</i>`,
        xref: 'paper',
        yref: 'paper',
        x: c * (width + gap) + width / 2,
        y: 1,
        yanchor: 'bottom',
        showarrow: false,
        font: { size: 11 },
      })),
    }
    roles.forEach((_, c) => {
      const axis = c === 0 ? '' : String(c + 1)
      out[`xaxis${axis}`] = {
        domain: [c * (width + gap), c * (width + gap) + width],
        anchor: `y${axis}`,
        title: { text: `${info.axis} of the stage` },
        ...(info.axis === 'epoch' ? { tickformat: 'd', dtick: epochTick } : {}),
      }
      out[`yaxis${axis}`] = {
        anchor: `x${axis}`,
        ...(c === 0 ? { title: { text: info.unit } } : { matches: 'y', showticklabels: false }),
        ...(info.format.includes('%') && !log ? { tickformat: '.0%' } : {}),
        type: log ? 'log' : 'linear',
        exponentformat: 'e',
      }
    })
    return out
  }, [roles, info, log, epochTick])

  return (
    <section aria-labelledby="compare-title">
      <h1 id="compare-title">Compare runs</h1>
      {runs.length === 0 && (
        <div className="empty">
          <p>No runs to compare yet.</p>
        </div>
      )}
      <fieldset className="compare-picker">
        <legend>Runs</legend>
        {runs.map((run) => (
          <label key={run.id} className="inline">
            <input type="checkbox" checked={ids.includes(run.id)} onChange={() => toggle(run.id)} />
            {run.name}{' '}
            <span className="muted small">
              ({run.config.pipeline}, {run.status}, {run.environment.engine}
              {run.environment.device ? ` on ${run.environment.device.kind}` : ''})
            </span>
          </label>
        ))}
      </fieldset>
      {picked.length === 0 && runs.length > 0 && (
        <p className="muted">Pick two or more runs, e.g. r2b against baseline.</p>
      )}
      {picked.length > 0 && (
        <>
          <div className="toolbar" role="group" aria-label="Comparison options">
            <label className="inline small">
              Metric
              <select value={metric} onChange={(e) => setMetric(e.target.value as CompareMetric)}>
                <optgroup label="per epoch">
                  {(Object.keys(METRICS) as Metric[])
                    .filter((m) => METRICS[m].axis === 'epoch')
                    .map((m) => (
                      <option key={m} value={m}>
                        {METRICS[m].label}
                      </option>
                    ))}
                </optgroup>
                <optgroup label="per step">
                  {(Object.keys(METRICS) as Metric[])
                    .filter((m) => METRICS[m].axis === 'step')
                    .map((m) => (
                      <option key={m} value={m}>
                        {METRICS[m].label}
                      </option>
                    ))}
                </optgroup>
                <optgroup label="from the snapshots">
                  {(Object.keys(SNAPSHOT_METRICS) as SnapshotMetric[]).map((m) => (
                    <option key={m} value={m}>
                      {SNAPSHOT_METRICS[m].label}
                    </option>
                  ))}
                </optgroup>
              </select>
            </label>
            {info.axis === 'step' && <SmoothingSlider value={smoothing} onChange={setSmoothing} />}
          </div>
          <PlotFigure
            title={`${info.label}, stage by stage`}
            note="Each panel is one kind of stage (what it trains), whatever the pipeline calls it; runs overlaid, each stage counted from its own first epoch or step. One y axis for all panels."
            data={traces}
            layout={layout}
            height={380}
            label="Compared runs"
            testId="compare-plot"
            fileName={figureName('compare', ...picked.map((h) => h.run.id), metric)}
            logY={{ value: log, onChange: setLog }}
            empty={
              isSnapshotMetric(metric) && !fromSnapshots ? (
                <p className="muted small">Reading the snapshots…</p>
              ) : undefined
            }
          />
          <div className="table-scroll">
            <table className="table numeric" aria-label="Final accuracy per stage">
              <thead>
                <tr>
                  <th rowSpan={2}>Run</th>
                  <th rowSpan={2}>Pipeline</th>
                  {roles.map((r) => (
                    <th key={r.key} colSpan={2}>
                      {r.label}
                    </th>
                  ))}
                </tr>
                <tr>
                  {roles.flatMap((r) => [
                    <th key={`${r.key}-1`}>top-1</th>,
                    <th key={`${r.key}-5`}>top-5</th>,
                  ])}
                </tr>
              </thead>
              <tbody>
                {picked.map((h) => (
                  <tr key={h.run.id}>
                    <td>{h.run.name}</td>
                    <td>{h.run.config.pipeline}</td>
                    {roles.flatMap((role) => {
                      const spec = h.run.config.stages.find((s) => stageRole(s.student).key === role.key)
                      const stage = spec ? h.run.stages.find((s) => s.name === spec.name) : undefined
                      return [
                        <td key={`${role.key}-1`} title={spec?.name}>
                          {stage ? percent(stage.testTop1) : ''}
                        </td>,
                        <td key={`${role.key}-5`} title={spec?.name}>
                          {stage ? percent(stage.testTop5) : ''}
                        </td>,
                      ]
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  )
}
