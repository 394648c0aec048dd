/**
 * The one encoding of snapshot payloads (docs/run-format.md, "Snapshots"): an engine's attention or gate
 * record becomes an index entry and one float32 payload, and back. Every writer and reader goes through
 * these two functions, so no one takes array names apart.
 */
import type { AttentionRecord, GateRecord, TensorData } from './records'
import { snapshotFile, type ArraySlot, type SnapshotIndexEntry } from './runs'

export type SnapshotRecord = AttentionRecord | GateRecord

export function encodeSnapshot(record: SnapshotRecord): { entry: SnapshotIndexEntry; payload: Float32Array } {
  const parts: Float32Array[] = []
  let offset = 0
  const slot = (tensor: TensorData): ArraySlot => {
    parts.push(tensor.data)
    const placed = { shape: tensor.shape.slice(), offset }
    offset += tensor.data.length
    return placed
  }
  const base = {
    stage: record.stage,
    epochsCompleted: record.epochsCompleted,
    probes: record.probes.slice(),
    file: snapshotFile(record.stage, record.kind, record.epochsCompleted),
  }
  const entry: SnapshotIndexEntry =
    record.kind === 'attention'
      ? {
          kind: 'attention',
          ...base,
          form: record.form,
          points: record.points.map((p) => ({
            point: p.point,
            student: slot(p.student),
            teacher: p.teacher ? slot(p.teacher) : null,
          })),
        }
      : {
          kind: 'gates',
          ...base,
          subset: record.subset,
          gates: record.gates.map((g) => ({
            block: g.block,
            mean: slot({ shape: [g.mean.length], data: g.mean }),
            perProbe: slot(g.perProbe),
          })),
        }
  const payload = new Float32Array(offset)
  let at = 0
  for (const part of parts) {
    payload.set(part, at)
    at += part.length
  }
  return { entry, payload }
}

/** The record an entry and its payload hold; throws when an array reaches beyond the payload. */
export function decodeSnapshot(entry: SnapshotIndexEntry, payload: Float32Array): SnapshotRecord {
  const take = (slot: ArraySlot): TensorData => {
    const size = slot.shape.reduce((a, b) => a * b, 1)
    if (slot.offset + size > payload.length)
      throw new Error(`an array at ${slot.offset}+${size} reaches beyond the ${payload.length} values stored`)
    return { shape: slot.shape.slice(), data: payload.subarray(slot.offset, slot.offset + size) }
  }
  const base = { stage: entry.stage, epochsCompleted: entry.epochsCompleted, probes: entry.probes.slice() }
  if (entry.kind === 'attention')
    return {
      kind: 'attention',
      ...base,
      form: entry.form,
      points: entry.points.map((p) => ({
        point: p.point,
        student: take(p.student),
        teacher: p.teacher ? take(p.teacher) : null,
      })),
    }
  return {
    kind: 'gates',
    ...base,
    subset: entry.subset,
    gates: entry.gates.map((g) => ({ block: g.block, mean: take(g.mean).data, perProbe: take(g.perProbe) })),
  }
}
