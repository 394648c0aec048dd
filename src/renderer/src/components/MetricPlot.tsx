import { useMemo, useState } from 'react'
import type { Trace } from 'plotly.js-cartesian-dist-min'
import {
  METRICS,
  metricSegments,
  stageMarks,
  type Metric,
  type RunCurves,
} from '../../../shared/figures/curves'
import { capPoints } from '../../../shared/figures/series'
import { PlotFigure } from './Plot'

export interface MetricLine {
  metric: Metric
  /** Legend name; the metric's label by default. */
  name?: string
  color: string
  dash?: string
  /** Stages to leave out (e.g. where the component is not part of the loss and always 0). */
  skipStages?: readonly string[]
}

/**
 * Segments joined into one trace with a gap (null) between stages, so a line never crosses a stage boundary;
 * one trace per metric keeps Plotly's redraw cheap while a run streams.
 */
function gapped(segments: { stage: string; x: number[]; y: number[]; local: number[] }[]) {
  const x: (number | null)[] = []
  const y: (number | null)[] = []
  const customdata: ([string, number] | null)[] = []
  segments.forEach((segment, i) => {
    if (i > 0) {
      x.push(null)
      y.push(null)
      customdata.push(null)
    }
    const shown = capPoints({ x: segment.x, y: segment.y })
    const local = capPoints({ x: segment.x, y: segment.local })
    x.push(...shown.x)
    y.push(...shown.y)
    customdata.push(...local.y.map((n): [string, number] => [segment.stage, n]))
  })
  return { x, y, customdata }
}

/** Traces of some metrics of one run: one line per metric, broken between stages, hover in stage terms. */
export function metricTraces(
  curves: RunCurves,
  lines: readonly MetricLine[],
  options: { stage: string | null; smoothing: number },
): Trace[] {
  const traces: Trace[] = []
  for (const line of lines) {
    const info = METRICS[line.metric]
    const name = line.name ?? info.label
    const smoothing = info.axis === 'step' ? options.smoothing : 0
    const keep = (s: { stage: string }) => !line.skipStages?.includes(s.stage)
    const segments = metricSegments(curves, line.metric, { stage: options.stage, smoothing }).filter(keep)
    if (segments.length === 0) continue
    if (smoothing > 0) {
      const raw = gapped(
        metricSegments(curves, line.metric, { stage: options.stage, smoothing: 0 }).filter(keep),
      )
      traces.push({
        type: 'scatter',
        mode: 'lines',
        name: `${name} (raw)`,
        x: raw.x,
        y: raw.y,
        line: { color: line.color, width: 1, dash: line.dash },
        opacity: 0.25,
        showlegend: false,
        hoverinfo: 'skip',
        legendgroup: name,
      })
    }
    const shown = gapped(segments)
    traces.push({
      type: 'scatter',
      mode: info.axis === 'epoch' ? 'lines+markers' : 'lines',
      name,
      legendgroup: name,
      x: shown.x,
      y: shown.y,
      customdata: shown.customdata,
      connectgaps: false,
      line: { color: line.color, width: 2, dash: line.dash },
      hovertemplate: `${name}: %{y:${info.format}}<br>stage %{customdata[0]}, ${info.axis} %{customdata[1]}<extra></extra>`,
    })
  }
  return traces
}

export interface MetricPlotProps {
  curves: RunCurves
  lines: readonly MetricLine[]
  title: string
  note?: React.ReactNode
  stage: string | null
  smoothing: number
  testId?: string
  fileName: string
  height?: number
  /** y axis format and range (accuracy in [0, 1]). */
  yaxis?: Record<string, unknown>
  empty?: React.ReactNode
}

/** One card of the dashboard: some metrics over epochs or steps, across stages or within one. */
export function MetricPlot(props: MetricPlotProps) {
  const { curves, lines, stage, smoothing } = props
  const info = METRICS[lines[0]!.metric]
  const [log, setLog] = useState(info.log)
  const data = useMemo(
    () => metricTraces(curves, lines, { stage, smoothing }),
    [curves, lines, stage, smoothing],
  )
  const layout = useMemo(() => {
    const marks = stage ? { shapes: [], annotations: [] } : stageMarks(curves, info.axis)
    const span = curves.stages.find((s) => s.name === stage)
    const within = info.axis === 'epoch' ? 'epoch' : 'step'
    return {
      xaxis: {
        title: { text: stage ? `${within} of stage ${stage}` : `${within} (stages in order)` },
        ...(info.axis === 'epoch'
          ? {
              tickformat: 'd',
              dtick: Math.max(
                1,
                Math.ceil(
                  (stage ? (span?.epochs ?? 1) : curves.stages.reduce((n, s) => n + s.epochs, 0)) / 12,
                ),
              ),
              range: stage
                ? [0.5, (span?.epochs ?? 1) + 0.5]
                : [
                    0.5,
                    Math.max(
                      1,
                      curves.stages.reduce((n, s) => n + s.epochs, 0),
                    ) + 0.5,
                  ],
            }
          : {}),
      },
      yaxis: {
        title: { text: info.unit },
        ...(info.format.includes('%') ? { tickformat: info.format.replace(/\.\d/, '.0') } : {}),
        ...(log ? {} : { rangemode: 'tozero' }),
        ...(log ? {} : props.yaxis),
        exponentformat: 'e',
      },
      showlegend: lines.length > 1,
      legend: { orientation: 'h', yref: 'container', y: 0, yanchor: 'bottom' },
      margin: { l: 60, r: 16, t: 32, b: lines.length > 1 ? 84 : 48 },
      ...marks,
    }
  }, [curves, stage, info, log, lines.length, props.yaxis])
  const hasData = data.some((t) => Array.isArray(t.x) && t.x.length > 0)
  return (
    <PlotFigure
      title={props.title}
      note={props.note}
      data={data}
      layout={layout}
      height={props.height ?? 260}
      label={props.title}
      testId={props.testId}
      fileName={props.fileName}
      logY={{ value: log, onChange: setLog }}
      empty={hasData ? undefined : (props.empty ?? <p className="muted small">No points yet.</p>)}
    />
  )
}
