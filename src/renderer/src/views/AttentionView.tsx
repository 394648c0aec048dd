import { useEffect, useMemo, useState } from 'react'
import type { Trace } from 'plotly.js-cartesian-dist-min'
import type { ImageBatch } from '../../../shared/api'
import { attentionGrid, probeMaps, type PointMaps } from '../../../shared/figures/maps'
import type { AttentionRecord } from '../../../shared/records'
import { decodeFloat32, decodeUint8 } from '../../../shared/binary'
import { ImageCanvas, imageAt } from '../components/ImageCanvas'
import { Plot } from '../components/Plot'
import { Scrubber, useSnapshotChoices, type ScrubberValue } from '../components/Scrubber'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'

interface Subject {
  /** Where the maps come from, in words. */
  source: string
  image: number
  points: PointMaps[]
}

const COLUMNS = ['teacher', 'student', 'student − teacher', 'student over image'] as const

export function attentionFigure(
  subject: Subject,
  image: { pixels: Uint8Array; shape: readonly [number, number, number] } | null,
  form: 'paper' | 'larq',
) {
  const traces: Trace[] = []
  const layout: Record<string, unknown> = {}
  const annotations: unknown[] = []
  const grid = attentionGrid(subject.points, form)
  const n = grid.points.length
  const gap = 0.012
  grid.points.forEach((p, r) => {
    const { height, width } = subject.points[r]!
    const y1 = 1 - r / n - gap
    const y0 = 1 - (r + 1) / n + gap
    const loss = p.loss
    annotations.push({
      x: -0.01,
      y: (y0 + y1) / 2,
      xref: 'paper',
      yref: 'paper',
      xanchor: 'right',
      showarrow: false,
      align: 'right',
      text: `${p.point}<br>${loss === null ? 'no teacher' : `L<sub>att</sub> ${loss.toFixed(4)}`}`,
      font: { size: 10 },
    })
    COLUMNS.forEach((column, c) => {
      const index = r * COLUMNS.length + c + 1
      const x0 = 0.02 + c / COLUMNS.length + gap
      const x1 = 0.02 + (c + 1) / COLUMNS.length - gap - 0.02
      const axis = (k: 'x' | 'y') => `${k}${index === 1 ? '' : index}`
      layout[`xaxis${index === 1 ? '' : index}`] = {
        domain: [x0, x1],
        anchor: axis('y'),
        visible: false,
        constrain: 'domain',
      }
      layout[`yaxis${index === 1 ? '' : index}`] = {
        domain: [y0, y1],
        anchor: axis('x'),
        visible: false,
        autorange: 'reversed',
        scaleanchor: axis('x'),
        constrain: 'domain',
      }
      const common = { xaxis: axis('x'), yaxis: axis('y') }
      const hover = (what: string) => `${what} · ${p.point}<br>(%{x}, %{y}) = %{z:.4f}<extra></extra>`
      if (column === 'teacher' && p.teacher)
        traces.push({
          ...common,
          type: 'heatmap',
          name: `teacher ${p.point}`,
          z: p.teacher,
          coloraxis: 'coloraxis',
          hovertemplate: hover('teacher'),
        })
      if (column === 'student')
        traces.push({
          ...common,
          type: 'heatmap',
          name: `student ${p.point}`,
          z: p.student,
          coloraxis: 'coloraxis',
          hovertemplate: hover('student'),
        })
      if (column === 'student − teacher' && p.difference) {
        traces.push({
          ...common,
          type: 'heatmap',
          name: `difference ${p.point}`,
          z: p.difference,
          coloraxis: 'coloraxis2',
          hovertemplate: hover('student − teacher'),
        })
      }
      if (column === 'student over image') {
        if (image) {
          const [h, w, ch] = image.shape
          const rgb = Array.from({ length: h }, (_, y) =>
            Array.from({ length: w }, (_, x) => {
              const o = (y * w + x) * ch
              const v = image.pixels[o] ?? 0
              return ch === 3 ? [v, image.pixels[o + 1] ?? 0, image.pixels[o + 2] ?? 0] : [v, v, v]
            }),
          )
          // The image spans the map's extent: one map cell covers (image size / map size) pixels.
          traces.push({
            ...common,
            type: 'image',
            z: rgb,
            dx: width / w,
            dy: height / h,
            x0: -0.5 + width / w / 2,
            y0: -0.5 + height / h / 2,
            hoverinfo: 'skip',
            name: `image ${p.point}`,
          })
        }
        traces.push({
          ...common,
          type: 'heatmap',
          name: `overlay ${p.point}`,
          z: p.student,
          coloraxis: 'coloraxis',
          opacity: image ? 0.55 : 1,
          hovertemplate: hover('student'),
        })
      }
    })
  })
  COLUMNS.forEach((column, c) =>
    annotations.push({
      x: 0.02 + (c + 0.5) / COLUMNS.length - 0.01,
      y: 1.0,
      xref: 'paper',
      yref: 'paper',
      yanchor: 'bottom',
      showarrow: false,
      text: `<b>${column}</b>`,
    }),
  )
  Object.assign(layout, {
    annotations,
    margin: { l: 110, r: 90, t: 30, b: 10 },
    coloraxis: {
      colorscale: 'Viridis',
      cmin: 0,
      cmax: grid.max,
      colorbar: { title: { text: 'attention' }, x: 1.0, len: 0.45, y: 0.77 },
    },
    coloraxis2: {
      colorscale: 'RdBu',
      reversescale: true,
      cmid: 0,
      cmin: -grid.maxDifference,
      cmax: grid.maxDifference,
      colorbar: { title: { text: 'S − T' }, x: 1.0, len: 0.45, y: 0.23 },
    },
    showlegend: false,
  })
  return { traces, layout }
}

const NO_CLASSES: string[] = []

export function AttentionView({ view }: { view: RunView }) {
  const { run } = view
  const readSnapshot = useWorkbench((s) => s.readSnapshot)
  const readImages = useWorkbench((s) => s.readImages)
  const inspectImage = useWorkbench((s) => s.inspectImage)
  const findImages = useWorkbench((s) => s.findImages)
  const classes = useWorkbench(
    (s) => s.datasets.find((d) => d.id === run.config.data.dataset)?.classes ?? NO_CLASSES,
  )
  const stageOrder = useMemo(() => run.config.stages.map((s) => s.name), [run.config])
  const choices = useSnapshotChoices(view.snapshots, 'attention', stageOrder)
  const [chosen, setChosen] = useState<ScrubberValue | null>(null)
  const at = chosen ?? choices.latest
  const [probe, setProbe] = useState(0)
  const [snapshot, setSnapshot] = useState<{ key: string; record: AttentionRecord } | null>(null)
  const [gallery, setGallery] = useState<ImageBatch | null>(null)
  const [custom, setCustom] = useState<{ subject: Subject; pixels: ImageBatch } | null>(null)
  const [indexText, setIndexText] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  const [inspecting, setInspecting] = useState(false)
  const form = run.config.stages.find((s) => s.name === at?.stage)?.losses.attention.form ?? 'larq'

  const atKey = at ? `${at.stage}/${at.epochsCompleted}` : null
  useEffect(() => {
    if (!at) return
    let live = true
    readSnapshot(run.id, { kind: 'attention', ...at }).then(
      (record) => {
        if (!live || record.kind !== 'attention') return
        setSnapshot({ key: atKey!, record })
        setProblem(null)
      },
      (error: unknown) => live && setProblem((error as Error).message),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [run.id, atKey, readSnapshot])

  const probes = snapshot?.record.probes ?? []
  const probesKey = probes.join(',')
  useEffect(() => {
    if (probes.length === 0) return
    let live = true
    readImages(run.config.data.dataset, 'test', probes).then(
      (batch) => live && setGallery(batch),
      (error: unknown) => live && setProblem(`probe images: ${(error as Error).message}`),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [probesKey, run.config.data.dataset, readImages])

  const galleryPixels = useMemo(() => (gallery ? decodeUint8(gallery.pixels) : null), [gallery])

  const subject: Subject | null = useMemo(() => {
    if (custom) return custom.subject
    if (!snapshot) return null
    const { probes } = snapshot.record
    const k = Math.min(probe, probes.length - 1)
    return {
      source: `probe ${k + 1} (test image ${probes[k]})`,
      image: probes[k] ?? 0,
      points: probeMaps(snapshot.record.points, k),
    }
  }, [custom, snapshot, probe])

  const image = useMemo(() => {
    if (custom) return { pixels: decodeUint8(custom.pixels.pixels), shape: custom.pixels.shape }
    if (!gallery || !galleryPixels || !snapshot) return null
    const { probes } = snapshot.record
    const k = gallery.indices.indexOf(probes[Math.min(probe, probes.length - 1)] ?? -1)
    return k >= 0 ? { pixels: imageAt(galleryPixels, gallery.shape, k), shape: gallery.shape } : null
  }, [custom, gallery, galleryPixels, snapshot, probe])

  const grid = useMemo(() => (subject ? attentionFigure(subject, image, form) : null), [subject, image, form])

  const inspect = (index = Number(indexText)) => {
    if (!at || !Number.isInteger(index) || index < 0) {
      setProblem('Give a test image index: a whole number from 0.')
      return
    }
    setInspecting(true)
    Promise.all([
      inspectImage({ run: run.id, stage: at.stage, epochsCompleted: at.epochsCompleted, image: index }),
      readImages(run.config.data.dataset, 'test', [index]),
    ]).then(
      ([result, pixels]) => {
        setInspecting(false)
        setProblem(null)
        setCustom({
          pixels,
          subject: {
            source: `test image ${index} (inspected by the worker)`,
            image: index,
            points: probeMaps(
              result.points.map((p) => ({
                point: p.point,
                student: { shape: p.student.shape, data: decodeFloat32(p.student.data) },
                teacher: p.teacher ? { shape: p.teacher.shape, data: decodeFloat32(p.teacher.data) } : null,
              })),
              0,
            ),
          },
        })
      },
      (error: unknown) => {
        setInspecting(false)
        setProblem((error as Error).message)
      },
    )
  }

  if (!at)
    return (
      <div className="empty">
        <p>No attention maps yet: they are recorded for the probe images after each epoch.</p>
      </div>
    )
  return (
    <div className="attention">
      <Scrubber
        choices={choices}
        value={chosen}
        onChange={(v) => {
          setChosen(v)
          setCustom(null)
        }}
      />
      <div className="row gallery" role="group" aria-label="Probe images">
        {snapshot?.record.probes.map((index, k) => (
          <button
            key={index}
            type="button"
            className={!custom && k === probe ? 'thumb active' : 'thumb'}
            aria-pressed={!custom && k === probe}
            aria-label={`Probe ${k + 1}, test image ${index}`}
            onClick={() => {
              setProbe(k)
              setCustom(null)
            }}
          >
            {gallery && galleryPixels && gallery.indices.includes(index) ? (
              <ImageCanvas
                pixels={imageAt(galleryPixels, gallery.shape, gallery.indices.indexOf(index))}
                shape={gallery.shape}
                size={44}
                label={`test image ${index}`}
              />
            ) : (
              <span>{index}</span>
            )}
          </button>
        ))}
        <form
          className="row inline"
          onSubmit={(e) => {
            e.preventDefault()
            inspect()
          }}
        >
          <label className="inline">
            Test image #
            <input
              type="text"
              inputMode="numeric"
              size={6}
              value={indexText}
              onChange={(e) => setIndexText(e.target.value)}
            />
          </label>
          <button type="submit" disabled={inspecting}>
            {inspecting ? 'Inspecting…' : 'Inspect'}
          </button>
          {classes.length > 0 && (
            <label className="inline">
              or the first of class
              <select
                value=""
                disabled={inspecting}
                onChange={(e) => {
                  const classIndex = Number(e.target.value)
                  findImages(run.config.data.dataset, 'test', classIndex, 1).then(
                    ([index]) => {
                      if (index === undefined)
                        return setProblem(`The test split has no image of class ${classes[classIndex]}.`)
                      setIndexText(String(index))
                      inspect(index)
                    },
                    (error: unknown) => setProblem((error as Error).message),
                  )
                }}
              >
                <option value="" disabled>
                  choose…
                </option>
                {classes.map((name, k) => (
                  <option key={name} value={k}>
                    {name}
                  </option>
                ))}
              </select>
            </label>
          )}
        </form>
      </div>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {subject && (
        <p className="muted small">
          {subject.source} · stage {at.stage}, after epoch {at.epochsCompleted} ·{' '}
          {form === 'larq' ? 'maps max-normalised, loss = MSE' : 'maps L2-normalised, loss = L2 distance'}
        </p>
      )}
      {grid && (
        <Plot
          data={grid.traces}
          layout={grid.layout}
          height={Math.max(480, subject!.points.length * 120)}
          label="Teacher and student attention maps per transfer point"
          testId="attention-grid"
        />
      )}
    </div>
  )
}
