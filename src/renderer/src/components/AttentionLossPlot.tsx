import { useMemo, useState } from 'react'
import type { Trace } from 'plotly.js-cartesian-dist-min'
import { stageMarks, type RunCurves } from '../../../shared/figures/curves'
import { attentionLossOf } from '../../../shared/figures/maps'
import { useSnapshotSeries } from '../lib/snapshots'
import type { RunView } from '../store'
import { PlotFigure } from './Plot'

const POINT_COLOURS = ['#440154', '#46327e', '#365c8d', '#277f8e', '#1fa187', '#4ac16d', '#a0da39', '#e8c81f']

/**
 * The attention loss at each transfer point after each epoch, recomputed from the stored maps of the probe
 * images: which points the student matches, and how that moves from stage to stage. Solid where the stage
 * trains on it, dashed where it only has a teacher (the fully binary stage: logit matching only).
 */
export function AttentionLossPlot({
  view,
  curves,
  stage,
  fileName,
}: {
  view: RunView
  curves: RunCurves
  stage: string | null
  fileName: string
}) {
  const { records, error } = useSnapshotSeries(view, 'attention')
  const [log, setLog] = useState(true)
  const config = view.run.config
  const probes = records?.find((r) => r.probes.length)?.probes.length ?? config.eval.probes
  const data = useMemo((): Trace[] => {
    if (!records) return []
    const losses = records.map(attentionLossOf).filter((l) => l !== null)
    const points = records.find((r) => r.points.length)?.points.map((p) => p.point) ?? []
    const traces: Trace[] = []
    // Per point two traces, stages trained on it (solid) and not (dashed), each broken between stages by a
    // gap: few traces keep the redraw cheap while a run streams.
    points.forEach((point, j) => {
      for (const trained of [true, false]) {
        const x: (number | null)[] = []
        const y: (number | null)[] = []
        const customdata: (unknown[] | null)[] = []
        for (const span of curves.stages) {
          if (stage && span.name !== stage) continue
          const spec = config.stages.find((s) => s.name === span.name)
          const rows = losses.filter((l) => l.stage === span.name)
          if (!spec || rows.length === 0 || spec.losses.attention.weight > 0 !== trained) continue
          if (x.length) {
            x.push(null)
            y.push(null)
            customdata.push(null)
          }
          for (const r of rows) {
            x.push(stage ? r.epochsCompleted : span.epochOffset + r.epochsCompleted)
            y.push(r.losses[j] ?? null)
            customdata.push([r.stage, r.epochsCompleted, trained ? 'in the loss' : 'not in the loss'])
          }
        }
        if (x.length === 0) continue
        traces.push({
          type: 'scatter',
          mode: 'lines+markers',
          name: point,
          legendgroup: point,
          showlegend: !traces.some((t) => t.legendgroup === point),
          x,
          y,
          customdata,
          connectgaps: false,
          line: {
            color: POINT_COLOURS[j % POINT_COLOURS.length],
            width: 2,
            dash: trained ? 'solid' : 'dash',
          },
          marker: { size: 5 },
          hovertemplate: `${point}: %{y:.4g}<br>stage %{customdata[0]}, after epoch %{customdata[1]} (%{customdata[2]})<extra></extra>`,
        })
      }
    })
    return traces
  }, [records, curves, stage, config])
  const layout = useMemo(
    () => ({
      xaxis: {
        title: { text: stage ? `epochs of stage ${stage} completed` : 'epochs completed (stages in order)' },
        tickformat: 'd',
        dtick: Math.max(1, Math.ceil(curves.stages.reduce((n, s) => n + s.epochs, 0) / 12)),
      },
      yaxis: { title: { text: 'L_att per point (probe mean)' }, exponentformat: 'e' },
      legend: { orientation: 'h', yref: 'container', y: 0, yanchor: 'bottom' },
      margin: { l: 60, r: 16, t: 32, b: 96 },
      ...(stage ? {} : stageMarks(curves, 'epoch')),
    }),
    [curves, stage],
  )
  const form = config.stages.find((s) => s.losses.attention.weight > 0)?.losses.attention.form ?? 'larq'
  const trainedOn = config.stages.filter((s) => s.losses.attention.weight > 0).map((s) => s.name)
  return (
    <PlotFigure
      title="Attention loss per transfer point, over epochs"
      note={
        <>
          Over the {probes} probe images, recomputed from their stored teacher and student maps (
          {form === 'larq' ? 'MSE of max-normalised maps' : 'L2 distance of L2-normalised maps'}). Solid:
          stages trained on it ({trainedOn.join(', ') || 'none'}); dashed: a teacher is present, the loss is
          not used.
        </>
      }
      data={data}
      layout={layout}
      height={300}
      label="Attention loss per transfer point over epochs"
      testId="attention-loss-plot"
      fileName={fileName}
      logY={{ value: log, onChange: setLog }}
      empty={
        error ? (
          <p className="error small">{error}</p>
        ) : data.length === 0 ? (
          <p className="muted small">
            {records ? 'No snapshot with a teacher yet.' : 'Reading the attention snapshots…'}
          </p>
        ) : undefined
      }
    />
  )
}
