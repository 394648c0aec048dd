/**
 * `r2b report`: one self-contained HTML page (plotly.js inlined, data embedded) with a run's accuracy curves,
 * loss components, learning rate, attention grids and gate heatmaps, for people who would rather look than
 * read. It opens from disk in any browser, offline.
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { loadHistory, type RunHistory } from '../runs/history'
import type { RunStore, SnapshotArrays } from '../runs/run-store'

type Figure = { id: string; title: string; note?: string; data: object[]; layout: object }

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const percent = (x: number) => Math.round(1000 * x) / 10

/** Exponential moving average, TensorBoard-style (debiased), for noisy per-step curves. */
export function smooth(values: number[], weight: number): number[] {
  let last = 0
  return values.map((v, i) => {
    last = last * weight + (1 - weight) * v
    return last / (1 - weight ** (i + 1))
  })
}

function stageLines(history: RunHistory, axis: 'epoch' | 'step') {
  const spans = history.stages.slice(1)
  return {
    shapes: spans.map((s) => ({
      type: 'line',
      xref: 'x',
      yref: 'paper',
      x0: axis === 'epoch' ? s.firstEpoch + 0.5 : s.firstStep,
      x1: axis === 'epoch' ? s.firstEpoch + 0.5 : s.firstStep,
      y0: 0,
      y1: 1,
      line: { dash: 'dot', width: 1, color: '#888' },
    })),
    annotations: history.stages.map((s) => ({
      xref: 'x',
      yref: 'paper',
      x: axis === 'epoch' ? s.firstEpoch + 0.6 : s.firstStep,
      y: 1.02,
      xanchor: 'left',
      showarrow: false,
      text: s.stage,
      font: { size: 11 },
    })),
  }
}

function curves(history: RunHistory): Figure[] {
  const e = history.epochs
  const x = e.map((r) => r.globalEpoch)
  const accuracy: Figure = {
    id: 'accuracy',
    title: 'Accuracy across stages',
    data: [
      { name: 'test top-1', x, y: e.map((r) => percent(r.test.top1)), mode: 'lines+markers' },
      { name: 'test top-5', x, y: e.map((r) => percent(r.test.top5)), mode: 'lines+markers' },
      {
        name: 'train top-1',
        x,
        y: e.map((r) => percent(r.train.top1)),
        mode: 'lines',
        line: { dash: 'dash' },
      },
      {
        name: 'train top-5',
        x,
        y: e.map((r) => percent(r.train.top5)),
        mode: 'lines',
        line: { dash: 'dash' },
      },
    ],
    layout: {
      xaxis: { title: { text: 'epoch (all stages, in order)' }, tickformat: 'd' },
      yaxis: { title: { text: 'accuracy (%)' }, range: [0, 100] },
      ...stageLines(history, 'epoch'),
    },
  }
  const s = history.steps
  const sx = s.map((r) => r.globalStep)
  const component = (name: string, values: number[]) => [
    {
      name: `${name} (raw)`,
      x: sx,
      y: values,
      mode: 'lines',
      opacity: 0.25,
      showlegend: false,
      legendgroup: name,
    },
    { name, x: sx, y: smooth(values, 0.8), mode: 'lines', legendgroup: name },
  ]
  const losses: Figure = {
    id: 'losses',
    title: 'Loss components',
    note: `Smoothed with an exponential moving average (weight 0.8); raw values faint.${history.stepStride > 1 ? ` Every ${history.stepStride}th step shown.` : ''}`,
    data: [
      ...component(
        'cross-entropy',
        s.map((r) => r.loss.crossEntropy),
      ),
      ...component(
        'attention (weighted)',
        s.map((r) => r.loss.attention),
      ),
      ...component(
        'distillation (weighted)',
        s.map((r) => r.loss.distillation),
      ),
      ...component(
        'total',
        s.map((r) => r.loss.total),
      ),
    ],
    layout: {
      xaxis: { title: { text: 'training step (all stages)' } },
      yaxis: { title: { text: 'loss' } },
      ...stageLines(history, 'step'),
    },
  }
  const schedule: Figure = {
    id: 'schedule',
    title: 'Learning rate and throughput',
    data: [
      { name: 'learning rate', x: sx, y: s.map((r) => r.learningRate), mode: 'lines' },
      {
        name: 'images/s',
        x: sx,
        y: smooth(
          s.map((r) => r.imagesPerSecond),
          0.8,
        ),
        mode: 'lines',
        yaxis: 'y2',
      },
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
      ...stageLines(history, 'step'),
    },
  }
  return [accuracy, losses, schedule]
}

/** Teacher (top row) and student (bottom row) maps of the first probe at every transfer point, one colour scale. */
function attentionGrid(stage: string, epoch: number, snapshot: SnapshotArrays): Figure {
  const points = [...new Set(snapshot.entry.arrays.map((a) => a.name.split('/')[0] as string))]
  const hasTeacher = snapshot.entry.arrays.some((a) => a.name.endsWith('/teacher'))
  const rows = hasTeacher ? ['teacher', 'student'] : ['student']
  const data: object[] = []
  const layout: Record<string, unknown> = {
    grid: { rows: rows.length, columns: points.length, pattern: 'independent', xgap: 0.04, ygap: 0.08 },
    coloraxis: { colorscale: 'Viridis', cmin: 0, colorbar: { title: { text: 'attention' } } },
    height: 180 * rows.length + 80,
    annotations: [] as object[],
  }
  rows.forEach((role, r) =>
    points.forEach((point, c) => {
      const array = snapshot.entry.arrays.find((a) => a.name === `${point}/${role}`)
      const values = snapshot.arrays.get(`${point}/${role}`)
      if (!array || !values) return
      const [, h, w] = array.shape as [number, number, number]
      const z = Array.from({ length: h }, (_, y) => Array.from(values.subarray(y * w, (y + 1) * w)))
      const axis = r * points.length + c + 1
      data.push({
        type: 'heatmap',
        z,
        coloraxis: 'coloraxis',
        xaxis: `x${axis}`,
        yaxis: `y${axis}`,
        hovertemplate: `${role} ${point}<br>x %{x}, y %{y}<br>%{z:.3f}<extra></extra>`,
      })
      layout[`xaxis${axis}`] = {
        showticklabels: false,
        title: r === rows.length - 1 ? { text: point } : undefined,
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
    id: `attention-${stage}`,
    title: `Attention maps, stage ${stage}, after epoch ${epoch + 1} (test image ${snapshot.entry.probes[0]})`,
    data,
    layout,
  }
}

function gateHeatmap(stage: string, epoch: number, snapshot: SnapshotArrays): Figure {
  const blocks = snapshot.entry.arrays
    .filter((a) => a.name.endsWith('/mean'))
    .map((a) => a.name.split('/')[0] as string)
  const width = Math.max(...blocks.map((b) => snapshot.arrays.get(`${b}/mean`)?.length ?? 0))
  const z = blocks.map((b) => {
    const values = Array.from(snapshot.arrays.get(`${b}/mean`) ?? [])
    return [...values, ...Array<null>(width - values.length).fill(null)]
  })
  return {
    id: `gates-${stage}`,
    title: `Mean gate values, stage ${stage}, after epoch ${epoch + 1} (over ${snapshot.entry.meta.subset} test images)`,
    data: [
      {
        type: 'heatmap',
        z,
        y: blocks,
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
      height: 120 + 22 * blocks.length,
    },
  }
}

async function snapshotFigures(store: RunStore, history: RunHistory): Promise<Figure[]> {
  const index = await store.snapshotIndex(history.run.id)
  const figures: Figure[] = []
  for (const { stage } of history.stages) {
    for (const kind of ['attention', 'gates'] as const) {
      const latest = index.filter((e) => e.stage === stage && e.kind === kind).at(-1)
      if (!latest) continue
      const snapshot = await store.readSnapshot(history.run.id, latest)
      figures.push(
        kind === 'attention'
          ? attentionGrid(stage, latest.epoch, snapshot)
          : gateHeatmap(stage, latest.epoch, snapshot),
      )
    }
  }
  return figures
}

function stageTableHtml(history: RunHistory): string {
  const rows = history.run.stages
    .map(
      (s) =>
        `<tr><td>${escape(s.name)}</td><td>${s.status}</td><td>${s.epochsDone}/${s.epochs}</td><td>${
          s.testTop1 === null ? '–' : `${percent(s.testTop1)}%`
        }</td><td>${s.testTop5 === null ? '–' : `${percent(s.testTop5)}%`}</td></tr>`,
    )
    .join('')
  return `<table><thead><tr><th>stage</th><th>status</th><th>epochs</th><th>test top-1</th><th>test top-5</th></tr></thead><tbody>${rows}</tbody></table>`
}

export async function buildReport(store: RunStore, runId: string): Promise<string> {
  const history = await loadHistory(store, runId)
  const figures = [...curves(history), ...(await snapshotFigures(store, history))]
  const require = createRequire(import.meta.url)
  const plotly = await readFile(require.resolve('plotly.js-dist-min'), 'utf8')
  const run = history.run
  const backend = run.environment.backend
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
<dt>backend</dt><dd>${backend ? escape(`${backend.backend}: ${backend.reason}`) : '–'}</dd></dl>
${stageTableHtml(history)}
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
