import { useEffect, useMemo, useState } from 'react'
import type { Trace } from 'plotly.js-cartesian-dist-min'
import { DIVERGING_COLORSCALE } from '../../../shared/figures/colormap'
import { centredGates, gateSpread, type GateCentre } from '../../../shared/figures/maps'
import type { GateRecord } from '../../../shared/records'
import { PlotFigure } from '../components/Plot'
import { ProbeGallery, useClassNames, useProbeImages } from '../components/ProbeGallery'
import { Scrubber, useSnapshotChoices, type ScrubberValue } from '../components/Scrubber'
import { figureName } from '../lib/download'
import { useSnapshotSeries } from '../lib/snapshots'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'

type Source = 'mean' | 'probe' | 'probe-minus-mean'

const SOURCE_LABELS: Record<Source, string> = {
  mean: 'mean over the evaluation images',
  probe: 'the chosen image',
  'probe-minus-mean': 'the chosen image minus the mean',
}
const CENTRE_LABELS: Record<GateCentre, string> = {
  'row-mean': "each convolution's mean",
  half: '0.5 (the sigmoid’s midpoint)',
}

/** A short label for a half block on an axis: `block_3a` stays, a longer name keeps its last parts. */
const short = (block: string) => block.replace(/^block_/, 'b').replace(/\.gate$/, '')

/**
 * The gates of one snapshot as the heatmap shows them: the values, what they are centred on, and the colour
 * range. "The chosen image minus the mean" shows how the data-driven gate scales channels for this image
 * against the average one, which is the point of a gate that depends on its input.
 */
function heatmapOf(record: GateRecord, source: Source, probe: number, centre: GateCentre) {
  if (source === 'probe-minus-mean') {
    const image = centredGates(record, { kind: 'probe', probe }, 'half')
    const mean = centredGates(record, { kind: 'mean' }, 'half')
    let range = 0
    const delta = image.z.map((row, r) =>
      row.map((v, c) => {
        const m = mean.z[r]?.[c]
        if (v === null || m === null || m === undefined) return null
        range = Math.max(range, Math.abs(v - m))
        return v - m
      }),
    )
    return { ...image, delta, range: range || 1e-6, title: 'image − mean gate' }
  }
  const gates = centredGates(record, source === 'mean' ? { kind: 'mean' } : { kind: 'probe', probe }, centre)
  return { ...gates, title: centre === 'half' ? 'gate − 0.5' : 'gate − its convolution’s mean' }
}

export function GatesView({ view }: { view: RunView }) {
  const { run } = view
  const readSnapshot = useWorkbench((s) => s.readSnapshot)
  const classes = useClassNames(run.config.data.dataset)
  const stageOrder = useMemo(() => run.config.stages.map((s) => s.name), [run.config])
  const choices = useSnapshotChoices(view.snapshots, 'gates', stageOrder)
  const [chosen, setChosen] = useState<ScrubberValue | null>(null)
  const at = chosen ?? choices.latest
  const [data, setData] = useState<GateRecord | null>(null)
  const [probe, setProbe] = useState(0)
  const [block, setBlock] = useState<string | null>(null)
  const [channel, setChannel] = useState<number | null>(null)
  const [source, setSource] = useState<Source>('mean')
  const [centre, setCentre] = useState<GateCentre>('row-mean')
  const [problem, setProblem] = useState<string | null>(null)
  const series = useSnapshotSeries(view, 'gates')

  const atKey = at ? `${at.stage}/${at.epochsCompleted}` : null
  useEffect(() => {
    if (!at) return
    let live = true
    readSnapshot(run.id, { kind: 'gates', ...at }).then(
      (record) => {
        if (!live || record.kind !== 'gates') return
        setData(record)
        setProblem(null)
      },
      (error: unknown) => live && setProblem((error as Error).message),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [run.id, atKey, readSnapshot])

  const probes = useMemo(() => data?.probes ?? [], [data])
  const images = useProbeImages(run.config.data.dataset, probes)
  const k = Math.min(probe, Math.max(0, probes.length - 1))
  const probeImage = probes[k] !== undefined ? images.image(probes[k]!) : null
  const probeName = `test image ${probes[k] ?? '?'}${probeImage ? ` (${classes[probeImage.label] ?? probeImage.label})` : ''}`
  const selected = data?.gates.find((g) => g.block === block) ?? data?.gates.at(-1) ?? null
  const file = (what: string) =>
    figureName(run.id, 'gates', at?.stage, at ? `e${at.epochsCompleted}` : null, what)

  const matrix = useMemo(() => (data ? heatmapOf(data, source, k, centre) : null), [data, source, k, centre])
  const heatmap = useMemo((): Trace[] => {
    if (!matrix) return []
    const traces: Trace[] = [
      {
        type: 'heatmap',
        name: 'gates',
        x: Array.from({ length: matrix.channels }, (_, i) => i),
        y: matrix.blocks,
        z: matrix.delta,
        customdata: matrix.z,
        colorscale: DIVERGING_COLORSCALE,
        zmid: 0,
        zmin: -matrix.range,
        zmax: matrix.range,
        xgap: matrix.channels > 96 ? 0 : 1,
        ygap: 1,
        colorbar: { title: { text: matrix.title, side: 'right' }, thickness: 12 },
        hovertemplate:
          source === 'probe-minus-mean'
            ? '%{y}, channel %{x}<br>image %{customdata:.3f}, minus the mean: %{z:+.3f}<extra></extra>'
            : '%{y}, channel %{x}<br>gate %{customdata:.3f} (%{z:+.3f} from the centre)<extra></extra>',
      },
    ]
    return traces
  }, [matrix, source])
  const selectedRow = selected && matrix ? matrix.blocks.indexOf(selected.block) : -1
  const heatmapLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'output channel' }, constrain: 'domain' },
      yaxis: { title: { text: 'binary convolution (click a row)' }, autorange: 'reversed', automargin: true },
      margin: { l: 90, r: 16, t: 32, b: 44 },
      shapes:
        selectedRow >= 0
          ? [
              {
                type: 'rect',
                xref: 'paper',
                x0: 0,
                x1: 1,
                yref: 'y',
                y0: selectedRow - 0.5,
                y1: selectedRow + 0.5,
                line: { color: '#f58518', width: 2 },
              },
            ]
          : [],
    }),
    [selectedRow],
  )

  const vector = useMemo((): Trace[] => {
    if (!selected || !data) return []
    const channels = selected.mean.length
    const x = Array.from({ length: channels }, (_, i) => i)
    const probeValues = Array.from(selected.perProbe.data.subarray(k * channels, (k + 1) * channels))
    return [
      {
        type: 'bar',
        name: `mean over ${data.subset} images`,
        x,
        y: Array.from(selected.mean),
        marker: {
          color: x.map((c) => (c === channel ? '#f58518' : '#9aa1ad')),
        },
        hovertemplate: 'channel %{x}: mean %{y:.3f}<extra></extra>',
      },
      {
        type: 'scatter',
        mode: 'markers',
        name: probeName,
        x,
        y: probeValues,
        marker: { color: '#4c78a8', size: 7 },
        hovertemplate: 'channel %{x}: %{y:.3f}<extra></extra>',
      },
    ]
  }, [selected, data, k, channel, probeName])
  const vectorLayout = useMemo(() => {
    const values = selected ? Array.from(selected.mean) : [0.5]
    const lo = Math.min(...values, 0.5)
    const hi = Math.max(...values, 0.5)
    const pad = Math.max(0.02, (hi - lo) * 0.25)
    return {
      xaxis: { title: { text: 'output channel (click a bar)' } },
      yaxis: {
        title: { text: 'gate value (sigmoid)' },
        range: [Math.max(0, lo - pad), Math.min(1, hi + pad)],
      },
      legend: { orientation: 'h', yref: 'container', y: 0, yanchor: 'bottom' },
      margin: { l: 60, r: 16, t: 32, b: 84 },
      shapes: [
        { type: 'line', xref: 'paper', x0: 0, x1: 1, y0: 0.5, y1: 0.5, line: { dash: 'dot', color: '#888' } },
      ],
    }
  }, [selected])

  const distributions = useMemo(
    (): Trace[] =>
      data
        ? data.gates.map((b) => ({
            type: 'box',
            name: short(b.block),
            x: Array.from(b.mean),
            orientation: 'h',
            boxpoints: 'outliers',
            marker: { color: b.block === selected?.block ? '#f58518' : '#4c78a8' },
            line: { color: b.block === selected?.block ? '#f58518' : '#4c78a8' },
            hovertemplate: `${b.block}: %{x:.3f}<extra></extra>`,
          }))
        : [],
    [data, selected],
  )
  const distributionLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'mean gate per channel' } },
      yaxis: { title: { text: 'convolution' }, autorange: 'reversed', automargin: true },
      showlegend: false,
      margin: { l: 70, r: 16, t: 32, b: 44 },
    }),
    [],
  )

  // Over epochs: the selected convolution's mean gates per channel, snapshot by snapshot, and every
  // convolution's spread.
  const over = useMemo(() => {
    const records = series.records ?? []
    const columns = records.map((r) => `${r.stage} e${r.epochsCompleted}`)
    const rows = records.map((r) => r.gates.find((g) => g.block === selected?.block) ?? null)
    const channels = Math.max(0, ...rows.map((g) => g?.mean.length ?? 0))
    const z = Array.from({ length: channels }, (_, c) =>
      rows.map((g) => (g && c < g.mean.length ? g.mean[c]! - 0.5 : null)),
    )
    let range = 0
    for (const row of z) for (const v of row) if (v !== null) range = Math.max(range, Math.abs(v))
    const heat: Trace[] = [
      {
        type: 'heatmap',
        name: `${selected?.block ?? ''} over epochs`,
        x: columns,
        y: Array.from({ length: channels }, (_, c) => c),
        z,
        colorscale: DIVERGING_COLORSCALE,
        zmid: 0,
        zmin: -(range || 1e-6),
        zmax: range || 1e-6,
        colorbar: { title: { text: 'gate − 0.5', side: 'right' }, thickness: 12 },
        hovertemplate: 'channel %{y}, %{x}: %{z:+.3f} from 0.5<extra></extra>',
      },
    ]
    const blocks = records.find((r) => r.gates.length)?.gates.map((g) => g.block) ?? []
    const spread: Trace[] = blocks.map((b, i) => ({
      type: 'scatter',
      mode: 'lines+markers',
      name: short(b),
      x: columns,
      y: records.map((r) => {
        const g = r.gates.find((x) => x.block === b)
        return g ? gateSpread(g.mean) : null
      }),
      line: { width: b === selected?.block ? 3 : 1, color: b === selected?.block ? '#f58518' : undefined },
      opacity: b === selected?.block ? 1 : 0.6,
      hovertemplate: `${b} · %{x}: spread %{y:.4f}<extra></extra>`,
      legendgroup: String(i),
    }))
    return { heat, spread, count: records.length }
  }, [series.records, selected])
  const overLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'snapshot (stage, epochs completed)' }, type: 'category' },
      yaxis: { title: { text: 'output channel' } },
      margin: { l: 60, r: 16, t: 32, b: 60 },
    }),
    [],
  )
  const spreadLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'snapshot (stage, epochs completed)' }, type: 'category' },
      yaxis: { title: { text: 'std of mean gates over channels' }, rangemode: 'tozero' },
      legend: { orientation: 'h', yref: 'container', y: 0, yanchor: 'bottom', font: { size: 10 } },
      margin: { l: 60, r: 16, t: 32, b: 110 },
    }),
    [],
  )
  const [spreadLog, setSpreadLog] = useState(false)

  if (!at)
    return (
      <div className="empty">
        <p>
          No gate values yet: they are recorded after each epoch of a stage whose student has gates
          (R2B&apos;s data-driven channel scaling).
        </p>
      </div>
    )
  const selectBlock = (name: string | null, c: number | null = null) => {
    if (name) setBlock(name)
    setChannel(c)
  }
  return (
    <div className="gates">
      <Scrubber choices={choices} value={chosen} onChange={setChosen} />
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {data && data.gates.length === 0 && <p className="muted">This stage&apos;s student has no gates.</p>}
      <ProbeGallery probes={probes} images={images} classes={classes} selected={k} onSelect={setProbe} />
      <div className="toolbar" role="group" aria-label="Gate options">
        <label className="inline small">
          Values
          <select aria-label="Values" value={source} onChange={(e) => setSource(e.target.value as Source)}>
            {(Object.keys(SOURCE_LABELS) as Source[]).map((s) => (
              <option key={s} value={s}>
                {SOURCE_LABELS[s]}
              </option>
            ))}
          </select>
        </label>
        <label className="inline small">
          Colour centre
          <select
            aria-label="Colour centre"
            value={centre}
            disabled={source === 'probe-minus-mean'}
            onChange={(e) => setCentre(e.target.value as GateCentre)}
          >
            {(Object.keys(CENTRE_LABELS) as GateCentre[]).map((c) => (
              <option key={c} value={c}>
                {CENTRE_LABELS[c]}
              </option>
            ))}
          </select>
        </label>
        <label className="inline small">
          Convolution
          <select
            aria-label="Convolution"
            value={selected?.block ?? ''}
            onChange={(e) => selectBlock(e.target.value)}
          >
            {data?.gates.map((b) => (
              <option key={b.block} value={b.block}>
                {b.block}
              </option>
            ))}
          </select>
        </label>
      </div>
      <PlotFigure
        title={`Gates per convolution and channel: ${SOURCE_LABELS[source]}`}
        note={
          <>
            Red: the gate scales the channel up, blue: down,{' '}
            {source === 'probe-minus-mean'
              ? `for ${probeName} against the mean over ${data?.subset ?? 0} test images`
              : `relative to ${CENTRE_LABELS[centre]}`}
            ; symmetric range ±{matrix ? matrix.range.toFixed(3) : '—'}. Stage {at.stage}, after epoch{' '}
            {at.epochsCompleted}
            {source !== 'mean' ? ` · ${probeName}` : ''}.
          </>
        }
        data={heatmap}
        layout={heatmapLayout}
        height={Math.max(300, 90 + 22 * (data?.gates.length ?? 8))}
        label="Gate heatmap"
        testId="gates-heatmap"
        fileName={file(`heatmap-${source}`)}
        onClick={(point) => {
          if (typeof point.y === 'string') selectBlock(point.y, typeof point.x === 'number' ? point.x : null)
        }}
      />
      <div className="plots">
        <PlotFigure
          title={`${selected?.block ?? ''}: the image's gates against the mean`}
          note={channel !== null ? `Channel ${channel} highlighted (clicked).` : 'Dotted: 0.5.'}
          data={vector}
          layout={vectorLayout}
          label="Gate vector against the mean"
          testId="gates-vector"
          fileName={file(`${selected?.block ?? 'block'}-vector`)}
          onClick={(point) => typeof point.x === 'number' && setChannel(point.x)}
        />
        <PlotFigure
          title="Distribution of mean gates per convolution"
          note="Click a box to choose its convolution."
          data={distributions}
          layout={distributionLayout}
          height={Math.max(280, 60 + 20 * (data?.gates.length ?? 8))}
          label="Gate distributions"
          testId="gates-box"
          fileName={file('distributions')}
          onClick={(point) => {
            const name = data?.gates[point.curveNumber]?.block
            if (name) selectBlock(name)
          }}
        />
        <PlotFigure
          title={`${selected?.block ?? ''} over epochs: mean gate per channel`}
          note={`Every gate snapshot of the run (${over.count}); centred on 0.5.`}
          data={over.heat}
          layout={overLayout}
          height={Math.max(260, 60 + 4 * (selected?.mean.length ?? 16))}
          label="Gates over epochs"
          testId="gates-over-epochs"
          fileName={figureName(run.id, 'gates', selected?.block ?? 'block', 'over-epochs')}
          empty={series.records ? undefined : <p className="muted small">Reading the snapshots…</p>}
        />
        <PlotFigure
          title="How differently each convolution scales its channels, over epochs"
          note="Standard deviation of the mean gates over a convolution's channels; the chosen one thick."
          data={over.spread}
          layout={spreadLayout}
          height={320}
          label="Gate spread over epochs"
          testId="gates-spread"
          fileName={figureName(run.id, 'gates', 'spread-over-epochs')}
          logY={{ value: spreadLog, onChange: setSpreadLog }}
          empty={series.records ? undefined : <p className="muted small">Reading the snapshots…</p>}
        />
      </div>
    </div>
  )
}
