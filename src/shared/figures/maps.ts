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
