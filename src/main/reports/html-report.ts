/**
 * `r2b report`: one self-contained HTML page (plotly.js inlined, data embedded) with a run's accuracy curves,
 * loss components, learning rate, attention grids and gate heatmaps, for people who would rather look than
 * read. It opens from disk in any browser, offline.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { runCurves, stageMarks, type RunCurves } from '../../shared/figures/curves'
import { attentionGrid, gateMatrix, probeMaps } from '../../shared/figures/maps'
import { capPoints, emaSmooth } from '../../shared/figures/series'
import type { AttentionRecord, GateRecord } from '../../shared/records'
import type { RunMeta } from '../../shared/runs'
import type { RunStore } from '../runs/run-store'

type Figure = { id: string; title: string; note?: string; data: object[]; layout: object }

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const percent = (x: number) => Math.round(1000 * x) / 10

function curveFigures(curves: RunCurves): Figure[] {
  const e = curves.epochs
  const x = e.map((r) => r.x)
  const accuracy: Figure = {
    id: 'accuracy',
    title: 'Accuracy across stages',
    data: [
      { name: 'test top-1', x, y: e.map((r) => percent(r.testTop1)), mode: 'lines+markers' },
      { name: 'test top-5', x, y: e.map((r) => percent(r.testTop5)), mode: 'lines+markers' },
      {
        name: 'train top-1',
        x,
        y: e.map((r) => percent(r.trainTop1)),
        mode: 'lines',
        line: { dash: 'dash' },
      },
      {
        name: 'train top-5',
        x,
        y: e.map((r) => percent(r.trainTop5)),
        mode: 'lines',
        line: { dash: 'dash' },
      },
    ],
    layout: {
      xaxis: { title: { text: 'epoch (all stages, in order)' }, tickformat: 'd' },
      yaxis: { title: { text: 'accuracy (%)' }, range: [0, 100] },
      ...stageMarks(curves, 'epoch'),
    },
  }
  const s = curves.steps
  const sx = s.map((r) => r.x)
  const component = (name: string, values: number[]) => {
    const raw = capPoints({ x: sx, y: values })
    const smooth = capPoints({ x: sx, y: emaSmooth(values, 0.8) })
    return [
      { name: `${name} (raw)`, ...raw, mode: 'lines', opacity: 0.25, showlegend: false, legendgroup: name },
      { name, ...smooth, mode: 'lines', legendgroup: name },
    ]
  }
  const losses: Figure = {
    id: 'losses',
    title: 'Loss components',
    note:
      'Unweighted components; the total is the weighted sum minimised. Smoothed with an exponential moving ' +
      'average (weight 0.8); raw values faint. Log scale: the components differ by orders of magnitude.',
    data: [
      ...component(
        'cross-entropy',
        s.map((r) => r.crossEntropy),
      ),
      ...component(
        'attention',
        s.map((r) => r.attention),
      ),
      ...component(
        'distillation',
        s.map((r) => r.distillation),
      ),
      ...component(
        'total',
        s.map((r) => r.total),
      ),
    ],
    layout: {
      xaxis: { title: { text: 'training step (all stages)' } },
      yaxis: { title: { text: 'loss' }, type: 'log' },
      ...stageMarks(curves, 'step'),
    },
  }
  const rate = capPoints({ x: sx, y: s.map((r) => r.learningRate) })
  const throughput = capPoints({
    x: sx,
    y: emaSmooth(
      s.map((r) => r.imagesPerSecond),
      0.8,
    ),
  })
  const schedule: Figure = {
    id: 'schedule',
    title: 'Learning rate and throughput',
    data: [
      { name: 'learning rate', ...rate, mode: 'lines' },
      { name: 'images/s', ...throughput, mode: 'lines', yaxis: 'y2' },
    ],
    layout: {
      xaxis: { title: { text: 'training step (all stages)' } },
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

/** Teacher (top row) and student (bottom row) maps of the first probe at every transfer point, one colour scale. */
function attentionFigure(record: AttentionRecord): Figure {
  const grid = attentionGrid(probeMaps(record.points, 0), record.form)
  const hasTeacher = grid.points.some((p) => p.teacher)
  const roles = hasTeacher ? (['teacher', 'student'] as const) : (['student'] as const)
  const data: object[] = []
  const layout: Record<string, unknown> = {
    grid: { rows: roles.length, columns: grid.points.length, pattern: 'independent', xgap: 0.04, ygap: 0.08 },
    coloraxis: { colorscale: 'Viridis', cmin: 0, cmax: grid.max, colorbar: { title: { text: 'attention' } } },
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
        coloraxis: 'coloraxis',
        xaxis: `x${axis}`,
        yaxis: `y${axis}`,
        hovertemplate: `${role} ${p.point}<br>x %{x}, y %{y}<br>%{z:.3f}<extra></extra>`,
      })
      layout[`xaxis${axis}`] = {
        showticklabels: false,
        title:
          r === roles.length - 1
            ? { text: p.loss === null ? p.point : `${p.point} (L_att ${p.loss.toFixed(4)})` }
            : undefined,
      }
      layout[`yaxis${axis}`] = {
        showticklabels: false,
        autorange: 'reversed',
        scaleanchor: `x${axis}`,
        title: c === 0 ? { text: role } : undefined,
      }
    }),
  )
  return {
    id: `attention-${record.stage}`,
    title: `Attention maps, stage ${record.stage}, after epoch ${record.epochsCompleted} (test image ${record.probes[0]})`,
    data,
    layout,
  }
}

function gateFigure(record: GateRecord): Figure {
  const matrix = gateMatrix(record)
  return {
    id: `gates-${record.stage}`,
    title: `Mean gate values, stage ${record.stage}, after epoch ${record.epochsCompleted} (over ${record.subset} test images)`,
    data: [
      {
        type: 'heatmap',
        z: matrix.z,
        y: matrix.blocks,
        colorscale: 'Viridis',
        zmin: 0,
        zmax: 1,
        colorbar: { title: { text: 'gate' } },
        hovertemplate: '%{y}, channel %{x}<br>gate %{z:.3f}<extra></extra>',
      },
    ],
    layout: {
      xaxis: { title: { text: 'output channel' } },
      yaxis: { title: { text: 'binary convolution' }, autorange: 'reversed', automargin: true },
      height: 120 + 22 * matrix.blocks.length,
    },
  }
}

async function snapshotFigures(store: RunStore, run: RunMeta): Promise<Figure[]> {
  const index = await store.snapshotIndex(run.id)
  const figures: Figure[] = []
  for (const { name: stage } of run.config.stages) {
    for (const kind of ['attention', 'gates'] as const) {
      const latest = index.filter((e) => e.stage === stage && e.kind === kind).at(-1)
      if (!latest) continue
      const record = await store.readSnapshot(run.id, latest)
      figures.push(record.kind === 'attention' ? attentionFigure(record) : gateFigure(record))
    }
  }
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
  const figures = [...curveFigures(runCurves(run.config, log)), ...(await snapshotFigures(store, run))]
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
  Plotly.newPlot(f.id, f.data, layout, { responsive: true, displaylogo: false })
}
</script>
</body></html>
`
}
