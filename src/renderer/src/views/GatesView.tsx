import { useEffect, useMemo, useState } from 'react'
import type { Trace } from 'plotly.js-cartesian-dist-min'
import { gateMatrix } from '../../../shared/figures/maps'
import type { GateRecord } from '../../../shared/records'
import { Plot } from '../components/Plot'
import { Scrubber, useSnapshotChoices, type ScrubberValue } from '../components/Scrubber'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'

export function GatesView({ view }: { view: RunView }) {
  const { run } = view
  const readSnapshot = useWorkbench((s) => s.readSnapshot)
  const stageOrder = useMemo(() => run.config.stages.map((s) => s.name), [run.config])
  const choices = useSnapshotChoices(view.snapshots, 'gates', stageOrder)
  const [chosen, setChosen] = useState<ScrubberValue | null>(null)
  const at = chosen ?? choices.latest
  const [data, setData] = useState<GateRecord | null>(null)
  const [probe, setProbe] = useState(0)
  const [block, setBlock] = useState<string | null>(null)
  const [problem, setProblem] = useState<string | null>(null)

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

  const heatmap = useMemo((): Trace[] => {
    if (!data) return []
    const matrix = gateMatrix(data)
    return [
      {
        type: 'heatmap',
        name: 'mean gate',
        x: Array.from({ length: matrix.channels }, (_, i) => i),
        y: matrix.blocks,
        z: matrix.z,
        colorscale: 'Cividis',
        zmin: 0,
        zmax: 1,
        colorbar: { title: { text: 'gate (sigmoid)' } },
        hovertemplate: '%{y}, channel %{x}: %{z:.3f}<extra></extra>',
      },
    ]
  }, [data])
  const heatmapLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'output channel' } },
      yaxis: { title: { text: 'binary convolution' }, autorange: 'reversed', automargin: true },
    }),
    [],
  )

  const selected = data?.gates.find((g) => g.block === block) ?? data?.gates.at(-1) ?? null
  const vector = useMemo((): Trace[] => {
    if (!selected || !data) return []
    const k = Math.min(probe, Math.max(0, data.probes.length - 1))
    const channels = selected.mean.length
    const x = Array.from({ length: channels }, (_, i) => i)
    const probeValues = Array.from(selected.perProbe.data.subarray(k * channels, (k + 1) * channels))
    return [
      {
        type: 'bar',
        name: `mean over ${data.subset} images`,
        x,
        y: Array.from(selected.mean),
        marker: { color: '#9aa1ad' },
        hovertemplate: 'channel %{x}: mean %{y:.3f}<extra></extra>',
      },
      {
        type: 'scatter',
        mode: 'markers',
        name: `test image ${data.probes[k]}`,
        x,
        y: probeValues,
        marker: { color: '#f58518', size: 7 },
        hovertemplate: 'channel %{x}: %{y:.3f}<extra></extra>',
      },
    ]
  }, [selected, data, probe])
  const vectorLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'output channel' } },
      yaxis: { title: { text: 'gate value' }, range: [0, 1] },
      legend: { orientation: 'h', y: 1.15 },
    }),
    [],
  )

  const distributions = useMemo(
    (): Trace[] =>
      data
        ? data.gates.map((b) => ({
            type: 'box',
            name: b.block,
            y: Array.from(b.mean),
            boxpoints: 'outliers',
            hovertemplate: '%{y:.3f}<extra>%{fullData.name}</extra>',
          }))
        : [],
    [data],
  )
  const distributionLayout = useMemo(
    () => ({
      xaxis: { title: { text: 'binary convolution' } },
      yaxis: { title: { text: 'mean gate per channel' }, range: [0, 1] },
      showlegend: false,
    }),
    [],
  )

  if (!at)
    return (
      <div className="empty">
        <p>
          No gate values yet: they are recorded after each epoch of a stage whose student has gates
          (R2B&apos;s data-driven channel scaling).
        </p>
      </div>
    )
  return (
    <div className="gates">
      <Scrubber choices={choices} value={chosen} onChange={setChosen} />
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {data && data.gates.length === 0 && <p className="muted">This stage&apos;s student has no gates.</p>}
      <figure>
        <figcaption>
          Mean gate value per binary convolution and channel (stage {at.stage}, after epoch{' '}
          {at.epochsCompleted})
        </figcaption>
        <Plot
          data={heatmap}
          layout={heatmapLayout}
          height={360}
          label="Gate heatmap"
          testId="gates-heatmap"
        />
      </figure>
      <div className="row">
        <label className="inline">
          Convolution
          <select value={selected?.block ?? ''} onChange={(e) => setBlock(e.target.value)}>
            {data?.gates.map((b) => (
              <option key={b.block} value={b.block}>
                {b.block}
              </option>
            ))}
          </select>
        </label>
        <label className="inline">
          Probe image
          <select value={probe} onChange={(e) => setProbe(Number(e.target.value))}>
            {data?.probes.map((index, k) => (
              <option key={index} value={k}>
                #{index}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="plots">
        <figure>
          <figcaption>The image&apos;s gates against the mean ({selected?.block})</figcaption>
          <Plot data={vector} layout={vectorLayout} label="Gate vector against the mean" />
        </figure>
        <figure>
          <figcaption>Distribution of mean gates per convolution</figcaption>
          <Plot data={distributions} layout={distributionLayout} label="Gate distributions" />
        </figure>
      </div>
    </div>
  )
}
