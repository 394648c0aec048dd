/**
 * Snapshots across the UI's transports: the record with its arrays as base64 (src/shared/binary.ts), so the
 * same JSON crosses Electron IPC and the WebSocket. The host encodes, the renderer decodes.
 */
import type { EncodedTensor, SnapshotData } from './api'
import { decodeFloat32, encodeFloat32 } from './binary'
import type { TensorData } from './records'
import type { SnapshotRecord } from './snapshots'

const encode = (t: TensorData): EncodedTensor => ({ shape: t.shape, data: encodeFloat32(t.data) })
const decode = (t: EncodedTensor): TensorData => ({ shape: t.shape, data: decodeFloat32(t.data) })

export function encodeSnapshotData(record: SnapshotRecord): SnapshotData {
  const base = { stage: record.stage, epochsCompleted: record.epochsCompleted, probes: record.probes }
  if (record.kind === 'attention')
    return {
      kind: 'attention',
      ...base,
      form: record.form,
      points: record.points.map((p) => ({
        point: p.point,
        student: encode(p.student),
        teacher: p.teacher ? encode(p.teacher) : null,
      })),
    }
  return {
    kind: 'gates',
    ...base,
    subset: record.subset,
    gates: record.gates.map((g) => ({
      block: g.block,
      mean: encode({ shape: [g.mean.length], data: g.mean }),
      perProbe: encode(g.perProbe),
    })),
  }
}

export function decodeSnapshotData(data: SnapshotData): SnapshotRecord {
  const base = { stage: data.stage, epochsCompleted: data.epochsCompleted, probes: data.probes }
  if (data.kind === 'attention')
    return {
      kind: 'attention',
      ...base,
      form: data.form,
      points: data.points.map((p) => ({
        point: p.point,
        student: decode(p.student),
        teacher: p.teacher ? decode(p.teacher) : null,
      })),
    }
  return {
    kind: 'gates',
    ...base,
    subset: data.subset,
    gates: data.gates.map((g) => ({
      block: g.block,
      mean: decode(g.mean).data,
      perProbe: decode(g.perProbe),
    })),
  }
}
