/**
 * The data of the attention and gate figures, shared by the HTML report and the UI: one probe's maps at
 * every transfer point with the stage's attention loss per point, and the matrix of gate values per binary
 * convolution and channel. Plain numbers out; each renderer only decides how to draw them.
 */
import type { AttentionPoint, AttentionRecord, GateRecord } from '../records'

/** One transfer point's maps of one image, [H, W] row-major. */
export interface PointMaps {
  point: string
  height: number
  width: number
  student: Float32Array
  teacher: Float32Array | null
}

/** The maps of probe `k` of an attention snapshot, or of a single inspected image (k = 0). */
export function probeMaps(points: readonly AttentionPoint[], k: number): PointMaps[] {
  return points.map((p) => {
    const [, height = 1, width = 1] = p.student.shape
    const size = height * width
    const slice = (data: Float32Array) => data.subarray(k * size, (k + 1) * size)
    return {
      point: p.point,
      height,
      width,
      student: slice(p.student.data),
      teacher: p.teacher ? slice(p.teacher.data) : null,
    }
  })
}

/** The stage's attention loss at one point, for one image: larq's MSE of the maps, or the paper's L2 distance. */
export function pointLoss(
  student: Float32Array,
  teacher: Float32Array,
  form: AttentionRecord['form'],
): number {
  let sum = 0
  for (let i = 0; i < student.length; i++) sum += ((student[i] as number) - (teacher[i] as number)) ** 2
  return form === 'larq' ? sum / student.length : Math.sqrt(sum)
}

export const rows = (values: Float32Array, height: number, width: number): number[][] =>
  Array.from({ length: height }, (_, y) => Array.from(values.subarray(y * width, (y + 1) * width)))

export interface AttentionGrid {
  points: {
    point: string
    teacher: number[][] | null
    student: number[][]
    /** Student minus teacher: positive where the student attends more. */
    difference: number[][] | null
    /** The attention loss at this point; null without a teacher. */
    loss: number | null
  }[]
  /** One colour scale for every map (they are normalised alike), and one symmetric one for differences. */
  max: number
  maxDifference: number
}

export function attentionGrid(maps: readonly PointMaps[], form: AttentionRecord['form']): AttentionGrid {
  let max = 0
  let maxDifference = 0
  const points = maps.map((p) => {
    const difference = p.teacher ? p.student.map((v, i) => v - (p.teacher![i] as number)) : null
    for (let i = 0; i < p.student.length; i++) {
      max = Math.max(max, p.student[i] as number, (p.teacher?.[i] ?? 0) as number)
      if (difference) maxDifference = Math.max(maxDifference, Math.abs(difference[i] as number))
    }
    return {
      point: p.point,
      teacher: p.teacher ? rows(p.teacher, p.height, p.width) : null,
      student: rows(p.student, p.height, p.width),
      difference: difference ? rows(difference, p.height, p.width) : null,
      loss: p.teacher ? pointLoss(p.student, p.teacher, form) : null,
    }
  })
  return { points, max: max || 1, maxDifference: maxDifference || 1 }
}

export interface GateMatrix {
  /** Half-block names, top to bottom. */
  blocks: string[]
  /** Channels of the widest block: narrower rows are padded with null. */
  channels: number
  /** Mean gate value per block (row) and output channel (column). */
  z: (number | null)[][]
}

export function gateMatrix(record: GateRecord): GateMatrix {
  const channels = Math.max(0, ...record.gates.map((g) => g.mean.length))
  return {
    blocks: record.gates.map((g) => g.block),
    channels,
    z: record.gates.map((g) =>
      Array.from({ length: channels }, (_, c) => (c < g.mean.length ? (g.mean[c] as number) : null)),
    ),
  }
}

/**
 * The attention loss at every transfer point after every epoch, recomputed from the stored maps of the probe
 * images (mean over probes), for the snapshots that have a teacher. `total` combines the points as the stage's
 * loss does (larq: mean over points; paper: sum), so it sits on the scale of the per-step attention curve,
 * though over the probe images only.
 */
export interface AttentionLossPoint {
  stage: string
  epochsCompleted: number
  form: AttentionRecord['form']
  /** Per transfer point, in the record's order. */
  losses: number[]
  total: number
}

export function attentionLossOf(record: AttentionRecord): AttentionLossPoint | null {
  if (record.points.length === 0 || record.points.some((p) => !p.teacher)) return null
  const probes = Math.max(1, record.probes.length)
  const losses = record.points.map((p) => {
    const maps = probeMaps([p], 0)[0]!
    const size = maps.height * maps.width
    let sum = 0
    for (let k = 0; k < probes; k++)
      sum += pointLoss(
        p.student.data.subarray(k * size, (k + 1) * size),
        p.teacher!.data.subarray(k * size, (k + 1) * size),
        record.form,
      )
    return sum / probes
  })
  const sum = losses.reduce((a, b) => a + b, 0)
  return {
    stage: record.stage,
    epochsCompleted: record.epochsCompleted,
    form: record.form,
    losses,
    total: record.form === 'larq' ? sum / losses.length : sum,
  }
}

/** Which gate values a matrix shows: the mean over the evaluation subset, or one probe image's. */
export type GateSource = { kind: 'mean' } | { kind: 'probe'; probe: number }

/** Where a diverging gate colour scale is centred: the sigmoid's midpoint, or each convolution's own mean. */
export type GateCentre = 'half' | 'row-mean'

export interface CentredGates extends GateMatrix {
  /** Values minus the centre, per block and channel (null past a narrower block's channels). */
  delta: (number | null)[][]
  /** The centre subtracted from each row. */
  centres: number[]
  /** Symmetric colour range: the largest |delta|. */
  range: number
}

/** Gate values of one source as a block × channel matrix, centred for a diverging colour scale. */
export function centredGates(record: GateRecord, source: GateSource, centre: GateCentre): CentredGates {
  const rows = record.gates.map((g) => {
    if (source.kind === 'mean') return g.mean
    const channels = g.mean.length
    const k = Math.min(source.probe, Math.max(0, record.probes.length - 1))
    return g.perProbe.data.subarray(k * channels, (k + 1) * channels)
  })
  const channels = Math.max(0, ...rows.map((r) => r.length))
  const centres = rows.map((r) =>
    centre === 'half' ? 0.5 : r.length ? r.reduce((a, b) => a + b, 0) / r.length : 0.5,
  )
  let range = 0
  const z = rows.map((r) =>
    Array.from({ length: channels }, (_, c) => (c < r.length ? (r[c] as number) : null)),
  )
  const delta = z.map((row, i) =>
    row.map((v) => {
      if (v === null) return null
      const d = v - (centres[i] as number)
      range = Math.max(range, Math.abs(d))
      return d
    }),
  )
  return { blocks: record.gates.map((g) => g.block), channels, z, delta, centres, range: range || 1e-6 }
}

/** Spread of a block's mean gates over its channels (standard deviation): how differently it scales them. */
export function gateSpread(values: ArrayLike<number>): number {
  const n = values.length
  if (n === 0) return 0
  let mean = 0
  for (let i = 0; i < n; i++) mean += values[i] as number
  mean /= n
  let sum = 0
  for (let i = 0; i < n; i++) sum += ((values[i] as number) - mean) ** 2
  return Math.sqrt(sum / n)
}

/** The top classes of a logit vector, with softmax probabilities. */
export function topClasses(logits: ArrayLike<number>, k = 5): { index: number; probability: number }[] {
  const values = Array.from(logits)
  const max = Math.max(...values)
  const exp = values.map((v) => Math.exp(v - max))
  const sum = exp.reduce((a, b) => a + b, 0)
  return exp
    .map((e, index) => ({ index, probability: e / sum }))
    .sort((a, b) => b.probability - a.probability)
    .slice(0, k)
}
