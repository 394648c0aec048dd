/**
 * `r2b report`: one self-contained HTML page (plotly.js inlined, data embedded) with a run's accuracy curves,
 * loss components, learning rate, attention grids and gate heatmaps, for people who would rather look than
 * read. It opens from disk in any browser, offline.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { DIVERGING_COLORSCALE, VIRIDIS_COLORSCALE } from '../../shared/figures/colormap'
import {
  METRICS,
  metricSegments,
  runCurves,
  stageMarks,
  type Metric,
  type RunCurves,
} from '../../shared/figures/curves'
import {
  attentionGrid,
  attentionLossOf,
  centredGates,
  gateSpread,
  probeMaps,
  rows,
} from '../../shared/figures/maps'
import { capPoints } from '../../shared/figures/series'
import { parseStageRef } from '../../shared/run-config'
import type { AttentionRecord, GateRecord } from '../../shared/records'
import type { RunMeta } from '../../shared/runs'
import type { RunStore } from '../runs/run-store'

type Figure = { id: string; title: string; note?: string; data: object[]; layout: object }

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const percent = (x: number) => Math.round(1000 * x) / 10

/** One metric of the run as per-stage lines (never joined across stages), as in the app's dashboard. */
function metricLines(
  curves: RunCurves,
  metric: Metric,
  options: {
    name?: string
    smoothing?: number
    percent?: boolean
    dash?: string
    color?: string
    skip?: string[]
  },
): object[] {
  const name = options.name ?? METRICS[metric].label
  return metricSegments(curves, metric, { smoothing: options.smoothing ?? 0 })
    .filter((segment) => !options.skip?.includes(segment.stage))
    .map((segment, i) => {
      const shown = capPoints({ x: segment.x, y: segment.y.map((v) => (options.percent ? percent(v) : v)) })
      return {
        name,
        legendgroup: name,
        showlegend: i === 0,
        ...shown,
        mode: METRICS[metric].axis === 'epoch' ? 'lines+markers' : 'lines',
        line: { dash: options.dash ?? 'solid', ...(options.color ? { color: options.color } : {}) },
        hovertemplate: `${name} %{y:.4g}<br>stage ${segment.stage}<extra></extra>`,
      }
    })
}

function curveFigures(run: RunMeta, curves: RunCurves): Figure[] {
  const accuracy: Figure = {
    id: 'accuracy',
    title: 'Accuracy, stage by stage',
    data: [
      ...metricLines(curves, 'testTop1', { percent: true, color: '#4c78a8' }),
      ...metricLines(curves, 'testTop5', { percent: true, color: '#54a24b' }),
      ...metricLines(curves, 'trainTop1', { percent: true, dash: 'dot', color: '#4c78a8' }),
      ...metricLines(curves, 'trainTop5', { percent: true, dash: 'dot', color: '#54a24b' }),
    ],
    layout: {
      xaxis: { title: { text: 'epoch (stages in order)' }, tickformat: 'd' },
      yaxis: { title: { text: 'accuracy (%)' }, range: [0, 100] },
      ...stageMarks(curves, 'epoch'),
    },
  }
  const unused = (key: 'attention' | 'distillation') =>
    run.config.stages.filter((s) => s.losses[key].weight === 0).map((s) => s.name)
  const losses: Figure = {
    id: 'losses',
    title: 'Loss components per step',
    note:
      'Unweighted components, as the app shows them; the total is the weighted sum minimised. A component is ' +
      'drawn only in the stages whose loss uses it. Smoothed with a debiased exponential moving average ' +
      '(weight 0.8) within each stage. Log scale: the components differ by orders of magnitude.',
    data: [
      ...metricLines(curves, 'crossEntropy', { smoothing: 0.8, color: '#4c78a8' }),
      ...metricLines(curves, 'attention', { smoothing: 0.8, color: '#f58518', skip: unused('attention') }),
      ...metricLines(curves, 'distillation', {
        smoothing: 0.8,
        color: '#54a24b',
        skip: unused('distillation'),
      }),
      ...metricLines(curves, 'total', { smoothing: 0.8, color: '#888888' }),
    ],
    layout: {
      xaxis: { title: { text: 'training step (stages in order)' } },
      yaxis: { title: { text: 'loss (CE and KD in nats; L_att unitless)' }, type: 'log' },
      ...stageMarks(curves, 'step'),
    },
  }
  const schedule: Figure = {
    id: 'schedule',
    title: 'Learning rate and throughput',
    data: [
      ...metricLines(curves, 'learningRate', { color: '#b279a2' }),
      ...metricLines(curves, 'imagesPerSecond', { smoothing: 0.8, color: '#72b7b2' }).map((t) => ({
        ...t,
        yaxis: 'y2',
      })),
    ],
    layout: {
      xaxis: { title: { text: 'training step (stages in order)' } },
      yaxis: { title: { text: 'learning rate' }, exponentformat: 'e' },
      yaxis2: {
        title: { text: 'throughput (images/s)' },
        overlaying: 'y',
        side: 'right',
        rangemode: 'tozero',
      },
      ...stageMarks(curves, 'step'),
    },
  }
  return [accuracy, losses, schedule]
}

const teacherOf = (run: RunMeta, stage: string) => {
  const spec = run.config.stages.find((s) => s.name === stage)
  const target = spec ? parseStageRef(spec.teacher) : { kind: 'none' as const }
  return target.kind === 'none'
    ? null
    : target.kind === 'stage'
      ? target.stage
      : `${target.run}/${target.stage}`
}

const DIFFERENCE_NOTE =
  'Difference colours as everywhere in the workbench: red where the student attends more than its teacher, blue where less.'

/**
 * Teacher, student and their difference for the first probe at every transfer point: one colour scale for
 * the maps, one symmetric diverging scale for the differences.
 */
function attentionFigure(run: RunMeta, record: AttentionRecord): Figure {
  const grid = attentionGrid(probeMaps(record.points, 0), record.form)
  const hasTeacher = grid.points.some((p) => p.teacher)
  const teacher = teacherOf(run, record.stage)
  const spec = run.config.stages.find((s) => s.name === record.stage)
  const trained = (spec?.losses.attention.weight ?? 0) > 0
  const roles = hasTeacher ? (['teacher', 'student', 'difference'] as const) : (['student'] as const)
  const rowTitle = {
    teacher: `teacher (${teacher})`,
    student: hasTeacher ? `student (${record.stage})` : `${record.stage} (no teacher)`,
    difference: 'student − teacher',
  }
  const data: object[] = []
  const layout: Record<string, unknown> = {
    grid: { rows: roles.length, columns: grid.points.length, pattern: 'independent', xgap: 0.04, ygap: 0.08 },
    coloraxis: {
      colorscale: VIRIDIS_COLORSCALE,
      cmin: 0,
      cmax: grid.max,
      colorbar: { title: { text: 'attention' }, len: 0.5, y: 0.75 },
    },
    coloraxis2: {
      colorscale: DIVERGING_COLORSCALE,
      cmin: -grid.maxDifference,
      cmax: grid.maxDifference,
      colorbar: { title: { text: 'S − T' }, len: 0.4, y: 0.2 },
    },
    height: 180 * roles.length + 80,
  }
  roles.forEach((role, r) =>
    grid.points.forEach((p, c) => {
      const z = p[role]
      if (!z) return
      const axis = r * grid.points.length + c + 1
      data.push({
        type: 'heatmap',
        z,
        coloraxis: role === 'difference' ? 'coloraxis2' : 'coloraxis',
        xaxis: `x${axis}`,
        yaxis: `y${axis}`,
        hovertemplate: `${rowTitle[role]} ${p.point}<br>x %{x}, y %{y}<br>%{z:.3f}<extra></extra>`,
      })
      const loss =
        p.loss === null ? '' : trained ? ` (L_att ${p.loss.toFixed(4)})` : ` (distance ${p.loss.toFixed(4)})`
      layout[`xaxis${axis}`] = {
        showticklabels: false,
        title: r === roles.length - 1 ? { text: `${p.point}${loss}`, font: { size: 10 } } : undefined,
      }
      layout[`yaxis${axis}`] = {
        showticklabels: false,
        autorange: 'reversed',
        scaleanchor: `x${axis}`,
        title: c === 0 ? { text: rowTitle[role], font: { size: 10 } } : undefined,
      }
    }),
  )
  return {
    id: `attention-${record.stage}`,
    title: `Attention maps, stage ${record.stage}, after epoch ${record.epochsCompleted} (test image ${record.probes[0]}): ${teacher ? `taught by ${teacher}` : 'no teacher'}`,
    note: `${trained ? `Trained with L_att ×${spec?.losses.attention.weight}.` : hasTeacher ? 'Not trained on attention: the distance is shown for reference.' : 'The stage trains alone; later stages match its maps.'} ${hasTeacher ? DIFFERENCE_NOTE : ''}`,
    data,
    layout,
  }
}

/** The attention loss per transfer point after every epoch, over the probe images, from the stored maps. */
function attentionLossFigure(run: RunMeta, curves: RunCurves, records: AttentionRecord[]): Figure | null {
  const losses = records.map(attentionLossOf).filter((l) => l !== null)
  if (losses.length === 0) return null
  const points = records.find((r) => r.points.length)?.points.map((p) => p.point) ?? []
  const data: object[] = []
  points.forEach((point, j) => {
    let first = true
    for (const span of curves.stages) {
      const rows = losses.filter((l) => l.stage === span.name)
      const spec = run.config.stages.find((s) => s.name === span.name)
      if (!rows.length || !spec) continue
      data.push({
        name: point,
        legendgroup: point,
        showlegend: first,
        x: rows.map((r) => span.epochOffset + r.epochsCompleted),
        y: rows.map((r) => r.losses[j]),
        mode: 'lines+markers',
        line: { dash: spec.losses.attention.weight > 0 ? 'solid' : 'dash' },
      })
      first = false
    }
  })
  return {
    id: 'attention-loss',
    title: 'Attention loss per transfer point, every epoch',
    note: `Over the ${records[0]?.probes.length ?? 0} probe images, recomputed from their stored maps. Solid: stages trained on it; dashed: a teacher is present but the loss is not used.`,
    data,
    layout: {
      xaxis: { title: { text: 'epochs completed (stages in order)' }, tickformat: 'd' },
      yaxis: { title: { text: 'L_att per point (probe mean)' }, type: 'log' },
      ...stageMarks(curves, 'epoch'),
    },
  }
}

/** The first probe image at one transfer point across every snapshot: the stage's map and its difference. */
function stripFigure(run: RunMeta, records: AttentionRecord[]): Figure | null {
  const with0 = records.filter((r) => r.probes.length > 0 && r.points.length > 0)
  if (with0.length === 0) return null
  const names = with0[0]!.points.map((p) => p.point)
  const point = names.at(-2) ?? names[0]!
  const image = with0[0]!.probes[0]
  const columns = with0.map((r) => ({
    record: r,
    maps: probeMaps(r.points, 0).find((p) => p.point === point)!,
  }))
  let max = 0
  let maxDifference = 0
  for (const { maps } of columns)
    maps.student.forEach((v, i) => {
      max = Math.max(max, v, maps.teacher?.[i] ?? 0)
      if (maps.teacher) maxDifference = Math.max(maxDifference, Math.abs(v - (maps.teacher[i] as number)))
    })
  const data: object[] = []
  const layout: Record<string, unknown> = {
    grid: { rows: 2, columns: columns.length, pattern: 'independent', xgap: 0.03, ygap: 0.1 },
    coloraxis: {
      colorscale: VIRIDIS_COLORSCALE,
      cmin: 0,
      cmax: max || 1,
      colorbar: { title: { text: 'attention' }, len: 0.5, y: 0.75 },
    },
    coloraxis2: {
      colorscale: DIVERGING_COLORSCALE,
      cmin: -(maxDifference || 1),
      cmax: maxDifference || 1,
      colorbar: { title: { text: 'S − T' }, len: 0.4, y: 0.2 },
    },
    height: 380,
  }
  columns.forEach(({ record, maps }, c) => {
    const rowsOf = (values: Float32Array) => rows(values, maps.height, maps.width)
    const cells = [
      { z: rowsOf(maps.student), axis: c + 1, colour: 'coloraxis', what: 'the stage' },
      maps.teacher
        ? {
            z: rowsOf(maps.student.map((v, i) => v - (maps.teacher![i] as number))),
            axis: columns.length + c + 1,
            colour: 'coloraxis2',
            what: `minus its teacher ${teacherOf(run, record.stage)}`,
          }
        : null,
    ]
    for (const cell of cells) {
      if (!cell) continue
      data.push({
        type: 'heatmap',
        z: cell.z,
        coloraxis: cell.colour,
        xaxis: `x${cell.axis}`,
        yaxis: `y${cell.axis}`,
        hovertemplate: `${record.stage} after epoch ${record.epochsCompleted}: ${cell.what}<br>%{z:.3f}<extra></extra>`,
      })
    }
    for (const axis of [c + 1, columns.length + c + 1]) {
      layout[`xaxis${axis}`] = {
        showticklabels: false,
        title:
          axis > columns.length
            ? { text: `${record.stage} e${record.epochsCompleted}`, font: { size: 9 } }
            : undefined,
      }
      layout[`yaxis${axis}`] = { showticklabels: false, autorange: 'reversed', scaleanchor: `x${axis}` }
    }
  })
  return {
    id: 'attention-strip',
    title: `Test image ${image} at ${point}, across stages and epochs`,
    note: `Top: each stage's map after each epoch; bottom: minus its teacher's. ${DIFFERENCE_NOTE}`,
    data,
    layout,
  }
}

/** Mean gates, centred on each convolution's own mean: which channels each one scales up (red) or down (blue). */
function gateFigure(record: GateRecord): Figure {
  const matrix = centredGates(record, { kind: 'mean' }, 'row-mean')
  return {
    id: `gates-${record.stage}`,
    title: `Mean gate values, stage ${record.stage}, after epoch ${record.epochsCompleted} (over ${record.subset} test images)`,
    note: "Centred on each convolution's mean gate: red scales a channel up relative to the others, blue down.",
    data: [
      {
        type: 'heatmap',
        z: matrix.delta,
        customdata: matrix.z,
        y: matrix.blocks,
        colorscale: DIVERGING_COLORSCALE,
        zmid: 0,
        zmin: -matrix.range,
        zmax: matrix.range,
        colorbar: { title: { text: 'gate − its mean' } },
        hovertemplate: '%{y}, channel %{x}<br>gate %{customdata:.3f} (%{z:+.3f})<extra></extra>',
      },
    ],
    layout: {
      xaxis: { title: { text: 'output channel' } },
      yaxis: { title: { text: 'binary convolution' }, autorange: 'reversed', automargin: true },
      height: 120 + 22 * matrix.blocks.length,
    },
  }
}

/** Every convolution's gate spread (std of its mean gates over channels) after every epoch. */
function gateSpreadFigure(records: GateRecord[]): Figure | null {
  const withGates = records.filter((r) => r.gates.length > 0)
  if (withGates.length === 0) return null
  const x = withGates.map((r) => `${r.stage} e${r.epochsCompleted}`)
  const blocks = withGates[0]!.gates.map((g) => g.block)
  return {
    id: 'gates-spread',
    title: 'Gate spread per convolution, every epoch',
    note: 'Standard deviation of a convolution’s mean gates over its channels: how differently it scales them.',
    data: blocks.map((block) => ({
      name: block,
      x,
      y: withGates.map((r) => {
        const g = r.gates.find((v) => v.block === block)
        return g ? gateSpread(g.mean) : null
      }),
      mode: 'lines+markers',
    })),
    layout: {
      xaxis: { title: { text: 'snapshot (stage, epochs completed)' }, type: 'category' },
      yaxis: { title: { text: 'std of mean gates' }, rangemode: 'tozero' },
    },
  }
}

async function snapshotFigures(store: RunStore, run: RunMeta, curves: RunCurves): Promise<Figure[]> {
  const index = await store.snapshotIndex(run.id)
  const order = run.config.stages.map((s) => s.name)
  const inOrder = index
    .filter((e) => order.includes(e.stage))
    .sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage) || a.epochsCompleted - b.epochsCompleted)
  const attention: AttentionRecord[] = []
  const gates: GateRecord[] = []
  for (const entry of inOrder) {
    const record = await store.readSnapshot(run.id, entry)
    if (record.kind === 'attention') attention.push(record)
    else gates.push(record)
  }
  const figures: Figure[] = []
  const loss = attentionLossFigure(run, curves, attention)
  if (loss) figures.push(loss)
  const strip = stripFigure(run, attention)
  if (strip) figures.push(strip)
  for (const stage of order) {
    const lastAttention = attention.filter((r) => r.stage === stage).at(-1)
    if (lastAttention) figures.push(attentionFigure(run, lastAttention))
    const lastGates = gates.filter((r) => r.stage === stage).at(-1)
    if (lastGates) figures.push(gateFigure(lastGates))
  }
  const spread = gateSpreadFigure(gates)
  if (spread) figures.push(spread)
  return figures
}

function stageTableHtml(run: RunMeta): string {
  const rows = run.stages
    .map(
      (s) =>
        `<tr><td>${escape(s.name)}</td><td>${s.status}</td><td>${s.epochsCompleted}/${s.epochs}</td><td>${
          s.testTop1 === null ? '–' : `${percent(s.testTop1)}%`
        }</td><td>${s.testTop5 === null ? '–' : `${percent(s.testTop5)}%`}</td></tr>`,
    )
    .join('')
  return `<table><thead><tr><th>stage</th><th>status</th><th>epochs</th><th>test top-1</th><th>test top-5</th></tr></thead><tbody>${rows}</tbody></table>`
}

export async function buildReport(store: RunStore, runId: string): Promise<string> {
  const [run, log] = await Promise.all([store.read(runId), store.readLog(runId)])
  const curves = runCurves(run.config, log)
  const figures = [...curveFigures(run, curves), ...(await snapshotFigures(store, run, curves))]
  const require = createRequire(import.meta.url)
  const plotly = await readFile(require.resolve('plotly.js-cartesian-dist-min'), 'utf8')
  const { engine, device } = run.environment
  const sections = figures
    .map(
      (f) =>
        `<section><h2>${escape(f.title)}</h2>${f.note ? `<p class="note">${escape(f.note)}</p>` : ''}<div class="plot" id="${f.id}"></div></section>`,
    )
    .join('\n')
  // `<` escaped so embedded data can never close the script element.
  const data = JSON.stringify(figures.map((f) => ({ id: f.id, data: f.data, layout: f.layout }))).replace(
    /</g,
    '\\u003c',
  )
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>R2B Workbench report: ${escape(run.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1200px;padding:0 16px;color:#1d2129}
h1{font-size:22px}h2{font-size:16px;margin-top:28px}.note{color:#5f6673;font-size:13px}
table{border-collapse:collapse;margin:12px 0}td,th{border-bottom:1px solid #d9dde3;padding:4px 12px;text-align:left}
dl{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px}dt{color:#5f6673}dd{margin:0}
.plot{min-height:320px}
</style></head><body>
<h1>${escape(run.name)}</h1>
<dl><dt>run</dt><dd>${escape(run.id)}</dd><dt>status</dt><dd>${run.status}${run.error ? ` — ${escape(run.error)}` : ''}</dd>
<dt>pipeline</dt><dd>${escape(run.config.pipeline)}, preset ${escape(run.config.preset)}</dd>
<dt>dataset</dt><dd>${escape(run.config.data.dataset)} (${run.config.data.inputSize}×${run.config.data.inputSize}×${run.config.data.channels}, ${run.config.data.classes} classes)</dd>
<dt>model</dt><dd>ResNet-18, width ×${run.config.model.width}, ${run.config.model.downsample} downsample</dd>
<dt>engine</dt><dd>${escape(engine)}${device ? escape(` on ${device.kind}: ${device.description}`) : ''}</dd></dl>
${stageTableHtml(run)}
${sections}
<script>${plotly}</script>
<script>
const figures = ${data};
for (const f of figures) {
  const layout = Object.assign({ margin: { t: 30, r: 60, b: 60, l: 60 }, legend: { orientation: 'h', y: -0.28 } }, f.layout)
  Plotly.newPlot(f.id, f.data, layout, {
    responsive: true,
    displaylogo: false,
    showSendToCloud: false,
    showEditInChartStudio: false,
    showLink: false,
    modeBarButtonsToRemove: ['sendChartToCloud', 'sendDataToCloud', 'editInChartStudio', 'downloadJson'],
    toImageButtonOptions: { filename: ${JSON.stringify(run.id)} + '_report_' + f.id },
  })
}
</script>
</body></html>
`
}
