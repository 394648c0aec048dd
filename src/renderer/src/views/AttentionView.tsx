import { useCallback, useEffect, useMemo, useState } from 'react'
import type { Inspection } from '../../../shared/api'
import { decodeFloat32, decodeUint8 } from '../../../shared/binary'
import { diverging, viridis } from '../../../shared/figures/colormap'
import { runCurves } from '../../../shared/figures/curves'
import { attentionGrid, probeMaps, topClasses, type PointMaps } from '../../../shared/figures/maps'
import type { AttentionRecord } from '../../../shared/records'
import type { RunConfig } from '../../../shared/run-config'
import { AttentionLossPlot } from '../components/AttentionLossPlot'
import { ColourBar, HeatmapCanvas } from '../components/Heatmap'
import { ImageCanvas } from '../components/ImageCanvas'
import { ProbeGallery, useClassNames, useProbeImages } from '../components/ProbeGallery'
import { Scrubber, useSnapshotChoices, type ScrubberValue } from '../components/Scrubber'
import { figureName } from '../lib/download'
import { stageChain } from '../lib/format'
import { useSnapshotSeries } from '../lib/snapshots'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'

/** What a stage is and who teaches it, in the words the attention view uses everywhere. */
export function stageFacts(config: RunConfig, stage: string) {
  const chain = stageChain(config)
  const entry = chain.find((s) => s.name === stage)
  const spec = config.stages.find((s) => s.name === stage)
  const attention = spec?.losses.attention.weight ?? 0
  const kd = spec?.losses.distillation.weight ?? 0
  return {
    teacher: entry?.teacher ?? null,
    trainsAttention: attention > 0,
    attentionWeight: attention,
    form: spec?.losses.attention.form ?? 'larq',
    kdWeight: kd,
    student:
      spec?.student.architecture === 'resnet'
        ? 'real ResNet-18'
        : spec
          ? `${spec.student.activation} activations, ${spec.student.weights} weights, ${spec.student.scaling} scaling`
          : '',
  }
}

const attentionColour = (t: number) => viridis(t)
const differenceColour = (t: number) => diverging(t)
const fmt = (v: number) => (Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(3) : v.toExponential(1))

interface Subject {
  /** Where the maps come from, in words. */
  source: string
  image: number
  points: PointMaps[]
  /** Logits of the image under this checkpoint, when the worker computed them. */
  logits: Float32Array | null
}

const predictions = new Map<string, Promise<Inspection>>()

/** The image's prediction under the snapshot's checkpoint, asked of the worker once per (stage, epoch, image). */
function usePrediction(
  runId: string,
  at: ScrubberValue | null,
  image: number | null,
  known: Float32Array | null,
) {
  const inspectImage = useWorkbench((s) => s.inspectImage)
  const [result, setResult] = useState<{
    key: string
    logits: Float32Array | null
    error: string | null
  } | null>(null)
  const key = at && image !== null ? `${runId}/${at.stage}/${at.epochsCompleted}/${image}` : null
  useEffect(() => {
    if (!key || !at || image === null || known) return
    let live = true
    const timer = setTimeout(() => {
      let asked = predictions.get(key)
      if (!asked) {
        asked = inspectImage({ run: runId, stage: at.stage, epochsCompleted: at.epochsCompleted, image })
        asked.catch(() => predictions.delete(key))
        predictions.set(key, asked)
      }
      asked.then(
        (inspection) => live && setResult({ key, logits: decodeFloat32(inspection.logits), error: null }),
        (error: unknown) => live && setResult({ key, logits: null, error: (error as Error).message }),
      )
    }, 250)
    return () => {
      live = false
      clearTimeout(timer)
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [key, known, inspectImage])
  if (known) return { logits: known, error: null, pending: false }
  if (!key || result?.key !== key) return { logits: null, error: null, pending: key !== null }
  return { logits: result.logits, error: result.error, pending: false }
}

type Hover = { what: string; point: string; x: number; y: number; value: number } | null

function MapGrid({
  points,
  image,
  teacher,
  stage,
  trainsAttention,
  onHover,
}: {
  points: PointMaps[]
  image: { pixels: Uint8Array; shape: readonly [number, number, number] } | null
  teacher: string | null
  stage: string
  trainsAttention: boolean
  onHover: (hover: Hover) => void
}) {
  const grid = useMemo(() => attentionGrid(points, 'larq'), [points])
  const max = grid.max
  const maxDifference = grid.maxDifference
  const hasTeacher = points.some((p) => p.teacher)
  const columns = hasTeacher
    ? [`teacher: ${teacher ?? 'teacher'}`, `student: ${stage}`, 'student − teacher', 'student over image']
    : [`${stage} (no teacher: its own maps)`, `${stage} over image`]
  const toViridis = useCallback((v: number) => v / max, [max])
  const toDiverging = useCallback((v: number) => v / maxDifference, [maxDifference])
  return (
    <>
      <div
        className="map-grid"
        style={{ ['--columns' as string]: columns.length }}
        data-testid="attention-grid"
      >
        <span className="head" />
        {columns.map((c) => (
          <span key={c} className="head" role="columnheader">
            {c}
          </span>
        ))}
        {points.map((p) => {
          const difference = p.teacher ? p.student.map((v, i) => v - (p.teacher![i] as number)) : null
          const hover = (what: string) => (cell: { x: number; y: number; value: number } | null) =>
            onHover(cell ? { what, point: p.point, ...cell } : null)
          return (
            <MapRow key={p.point}>
              <span className="row-head">
                <strong>{p.point}</strong>
                <br />
                {p.teacher && (
                  <span
                    className={trainsAttention ? '' : 'muted'}
                    title="Attention loss at this point, this image"
                  >
                    {trainsAttention ? 'L_att' : 'distance (not in the loss)'}{' '}
                    {fmt(grid.points.find((g) => g.point === p.point)?.loss ?? 0)}
                  </span>
                )}
              </span>
              {p.teacher && (
                <span className="map-cell">
                  <HeatmapCanvas
                    values={p.teacher}
                    height={p.height}
                    width={p.width}
                    colour={attentionColour}
                    scale={toViridis}
                    label={`teacher ${teacher ?? ''} at ${p.point}`}
                    role="teacher"
                    onHover={hover(`teacher ${teacher ?? ''}`)}
                  />
                </span>
              )}
              <span className="map-cell">
                <HeatmapCanvas
                  values={p.student}
                  height={p.height}
                  width={p.width}
                  colour={attentionColour}
                  scale={toViridis}
                  label={`${hasTeacher ? 'student' : 'model'} ${stage} at ${p.point}`}
                  role="student"
                  onHover={hover(`student ${stage}`)}
                />
              </span>
              {difference && (
                <span className="map-cell">
                  <HeatmapCanvas
                    values={difference}
                    height={p.height}
                    width={p.width}
                    colour={differenceColour}
                    scale={toDiverging}
                    label={`student minus teacher at ${p.point}`}
                    role="difference"
                    onHover={hover('student − teacher')}
                  />
                </span>
              )}
              <span className="map-cell">
                {image && (
                  <span className="underlay">
                    <ImageCanvas pixels={image.pixels} shape={image.shape} size="100%" label="the image" />
                  </span>
                )}
                <span className="underlay">
                  <HeatmapCanvas
                    values={p.student}
                    height={p.height}
                    width={p.width}
                    colour={attentionColour}
                    scale={toViridis}
                    opacity={image ? 0.55 : 1}
                    label={`student ${stage} over the image at ${p.point}`}
                    role="overlay"
                    onHover={hover(`student ${stage}`)}
                  />
                </span>
              </span>
            </MapRow>
          )
        })}
      </div>
      <div className="colour-bars">
        <ColourBar
          title="attention (normalised map)"
          colour={attentionColour}
          from={0}
          to={1}
          low={0}
          high={max}
        />
        {hasTeacher && (
          <ColourBar
            title="student − teacher: blue, the teacher attends more; red, the student attends more"
            colour={differenceColour}
            from={-1}
            to={1}
            low={-maxDifference}
            high={maxDifference}
          />
        )}
      </div>
    </>
  )
}

/** A row of the map grid: its cells go straight into the grid (display: contents). */
function MapRow({ children }: { children: React.ReactNode }) {
  return (
    <div role="row" style={{ display: 'contents' }}>
      {children}
    </div>
  )
}

/** One image across every attention snapshot: the student's maps (and their difference) stage by stage. */
function SnapshotStrip({
  view,
  image,
  teacherOf,
}: {
  view: RunView
  image: number
  teacherOf: (stage: string) => string | null
}) {
  const { records } = useSnapshotSeries(view, 'attention')
  const points = records?.find((r) => r.points.length)?.points.map((p) => p.point) ?? []
  const [point, setPoint] = useState<string | null>(null)
  const shownPoint = point && points.includes(point) ? point : (points.at(-2) ?? points[0] ?? null)
  const columns = useMemo(() => {
    if (!records || !shownPoint) return []
    return records
      .map((record: AttentionRecord) => {
        const k = record.probes.indexOf(image)
        if (k < 0) return null
        const maps = probeMaps(record.points, k).find((p) => p.point === shownPoint)
        return maps ? { record, maps } : null
      })
      .filter((c) => c !== null)
  }, [records, image, shownPoint])
  let max = 0
  let maxDifference = 0
  for (const { maps } of columns) {
    for (let i = 0; i < maps.student.length; i++) {
      max = Math.max(max, maps.student[i] as number, (maps.teacher?.[i] ?? 0) as number)
      if (maps.teacher)
        maxDifference = Math.max(
          maxDifference,
          Math.abs((maps.student[i] as number) - (maps.teacher[i] as number)),
        )
    }
  }
  max ||= 1
  maxDifference ||= 1
  const toViridis = useCallback((v: number) => v / max, [max])
  const toDiverging = useCallback((v: number) => v / maxDifference, [maxDifference])
  if (!records) return <p className="muted small">Reading the snapshots…</p>
  if (columns.length === 0)
    return <p className="muted small">Test image {image} is not a probe image: it has no maps over epochs.</p>
  return (
    <section aria-label="One image across stages and epochs">
      <div className="row">
        <h3 className="section-title grow">Test image {image} across stages and epochs</h3>
        <label className="inline">
          Transfer point
          <select value={shownPoint ?? ''} onChange={(e) => setPoint(e.target.value)}>
            {points.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
      </div>
      <div className="strip">
        <div
          className="map-grid"
          style={{ ['--columns' as string]: columns.length }}
          data-testid="attention-strip"
        >
          <span className="head" />
          {columns.map(({ record }) => (
            <span key={`${record.stage}/${record.epochsCompleted}`} className="head" role="columnheader">
              {record.stage}
              <br />
              <span className="muted">after epoch {record.epochsCompleted}</span>
            </span>
          ))}
          {(['teacher', 'student', 'difference'] as const).map((row) => (
            <MapRow key={row}>
              <span className="row-head">
                {row === 'difference'
                  ? 'stage − its teacher'
                  : row === 'teacher'
                    ? 'its teacher'
                    : 'the stage'}
              </span>
              {columns.map(({ record, maps }) => {
                const values =
                  row === 'student'
                    ? maps.student
                    : row === 'teacher'
                      ? maps.teacher
                      : maps.teacher
                        ? maps.student.map((v, i) => v - (maps.teacher![i] as number))
                        : null
                const key = `${record.stage}/${record.epochsCompleted}`
                if (!values)
                  return (
                    <span key={key} className="map-cell empty">
                      no teacher
                    </span>
                  )
                return (
                  <span
                    key={key}
                    className="map-cell"
                    title={row === 'teacher' ? `teacher: ${teacherOf(record.stage)}` : undefined}
                  >
                    <HeatmapCanvas
                      values={values}
                      height={maps.height}
                      width={maps.width}
                      colour={row === 'difference' ? differenceColour : attentionColour}
                      scale={row === 'difference' ? toDiverging : toViridis}
                      label={`${row} at ${shownPoint}, stage ${record.stage} after epoch ${record.epochsCompleted}`}
                      role={`strip-${row}`}
                    />
                  </span>
                )
              })}
            </MapRow>
          ))}
        </div>
      </div>
      <p className="muted small">
        One colour scale per row kind across the strip (attention 0–{fmt(max)}, difference ±
        {fmt(maxDifference)}).
      </p>
    </section>
  )
}

export function AttentionView({ view }: { view: RunView }) {
  const { run } = view
  const inspectImage = useWorkbench((s) => s.inspectImage)
  const findImages = useWorkbench((s) => s.findImages)
  const readSnapshot = useWorkbench((s) => s.readSnapshot)
  const classes = useClassNames(run.config.data.dataset)
  const stageOrder = useMemo(() => run.config.stages.map((s) => s.name), [run.config])
  const choices = useSnapshotChoices(view.snapshots, 'attention', stageOrder)
  const [chosen, setChosen] = useState<ScrubberValue | null>(null)
  const at = chosen ?? choices.latest
  const [probe, setProbe] = useState(0)
  const [snapshot, setSnapshot] = useState<{ key: string; record: AttentionRecord } | null>(null)
  const [custom, setCustom] = useState<{
    subject: Subject
    pixels: Uint8Array
    shape: [number, number, number]
    label: number
  } | null>(null)
  const [indexText, setIndexText] = useState('')
  const [problem, setProblem] = useState<string | null>(null)
  const [inspecting, setInspecting] = useState(false)
  const [hover, setHover] = useState<Hover>(null)
  const curves = useMemo(() => runCurves(run.config, view.log), [run.config, view.log])

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

  const probes = useMemo(() => snapshot?.record.probes ?? [], [snapshot])
  const images = useProbeImages(run.config.data.dataset, probes)
  const k = Math.min(probe, Math.max(0, probes.length - 1))
  const subject: Subject | null = useMemo(() => {
    if (custom) return custom.subject
    if (!snapshot) return null
    return {
      source: `probe ${k + 1} of ${probes.length}`,
      image: probes[k] ?? 0,
      points: probeMaps(snapshot.record.points, k),
      logits: null,
    }
  }, [custom, snapshot, k, probes])
  const image = custom
    ? { pixels: custom.pixels, shape: custom.shape, label: custom.label }
    : subject
      ? images.image(subject.image)
      : null
  const prediction = usePrediction(run.id, at, subject?.image ?? null, subject?.logits ?? null)
  const top = prediction.logits ? topClasses(prediction.logits, 5) : null

  const readImages = useWorkbench((s) => s.readImages)
  const readOne = async (index: number) => {
    const batch = await readImages(run.config.data.dataset, 'test', [index])
    return { pixels: decodeUint8(batch.pixels), shape: batch.shape }
  }
  const inspect = (index = indexText.trim() === '' ? Number.NaN : Number(indexText)) => {
    if (!Number.isInteger(index) || index < 0) {
      setProblem('Give a test image index: a whole number from 0.')
      return
    }
    if (!at) return
    setInspecting(true)
    Promise.all([
      inspectImage({ run: run.id, stage: at.stage, epochsCompleted: at.epochsCompleted, image: index }),
      readOne(index),
    ]).then(
      ([result, pixels]) => {
        setInspecting(false)
        setProblem(null)
        setCustom({
          pixels: pixels.pixels,
          shape: pixels.shape,
          label: result.label,
          subject: {
            source: 'inspected by the worker',
            image: index,
            logits: decodeFloat32(result.logits),
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
  const facts = stageFacts(run.config, at.stage)
  const label = image ? (classes[image.label] ?? `class ${image.label}`) : null
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
      <p className="facts-line" aria-label="Stage facts">
        <span>
          Stage <strong>{at.stage}</strong>: {facts.student}
        </span>
        <span data-testid="teacher-name">
          {facts.teacher ? (
            <>
              Teacher: <strong>{facts.teacher}</strong>
            </>
          ) : (
            'No teacher: it trains alone, on labels; later stages match its maps'
          )}
        </span>
        <span>
          Loss: CE
          {facts.trainsAttention ? ` + L_att ×${facts.attentionWeight} (${facts.form})` : ''}
          {facts.kdWeight > 0 ? ` + KD ×${facts.kdWeight}` : ''}
          {!facts.trainsAttention && facts.teacher
            ? ' (no attention loss: maps compared for reference only)'
            : ''}
        </span>
      </p>
      <ProbeGallery
        probes={probes}
        images={images}
        classes={classes}
        selected={custom ? null : k}
        onSelect={(next) => {
          setProbe(next)
          setCustom(null)
        }}
      />
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
              {classes.map((name, c) => (
                <option key={name} value={c}>
                  {name}
                </option>
              ))}
            </select>
          </label>
        )}
      </form>
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      {subject && (
        <p className="facts-line" aria-label="Image">
          <span>
            Test image <strong>{subject.image}</strong> ({subject.source}) · stage {at.stage}, after epoch{' '}
            {at.epochsCompleted}
          </span>
          <span>
            Class: <strong>{label ?? '…'}</strong>
          </span>
          <span aria-label="Prediction">
            {top ? (
              <>
                Predicted:{' '}
                <strong className={image && top[0]?.index === image.label ? 'ok' : 'error'}>
                  {classes[top[0]!.index] ?? top[0]!.index} {(100 * top[0]!.probability).toFixed(1)}%
                </strong>{' '}
                <span className="muted">
                  (top-5:{' '}
                  {top
                    .map((t) => `${classes[t.index] ?? t.index} ${(100 * t.probability).toFixed(1)}%`)
                    .join(', ')}
                  )
                </span>
              </>
            ) : prediction.error ? (
              <span className="muted">prediction unavailable: {prediction.error}</span>
            ) : (
              <span className="muted">predicting…</span>
            )}
          </span>
          <span className="muted">
            {facts.form === 'larq'
              ? 'maps max-normalised; L_att = MSE'
              : 'maps L2-normalised; L_att = L2 distance'}
          </span>
        </p>
      )}
      <p className="hover-readout muted" aria-live="polite">
        {hover
          ? `${hover.what} · ${hover.point} · cell (${hover.x}, ${hover.y}) = ${hover.value.toFixed(4)}`
          : 'Point at a map to read its values.'}
      </p>
      {subject && (
        <MapGrid
          points={subject.points}
          image={image}
          teacher={facts.teacher}
          stage={at.stage}
          trainsAttention={facts.trainsAttention}
          onHover={setHover}
        />
      )}
      {subject && !custom && (
        <SnapshotStrip
          view={view}
          image={subject.image}
          teacherOf={(s) => stageFacts(run.config, s).teacher}
        />
      )}
      <AttentionLossPlot
        view={view}
        curves={curves}
        stage={null}
        fileName={figureName(run.id, 'attention', 'loss-per-point')}
      />
    </div>
  )
}
