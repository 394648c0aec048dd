import { useEffect, useState } from 'react'
import type { AttentionRecord, GateRecord } from '../../../shared/records'
import type { RunView, SnapshotRef } from '../store'
import { useWorkbench } from '../store/context'

/** At most this many snapshots of a kind are read for a figure over epochs: a long run is thinned evenly. */
export const MAX_SNAPSHOTS_OVER_EPOCHS = 48

/** Snapshots of one kind in stage order then epoch order, thinned to `max` (each stage's last one kept). */
export function snapshotsInOrder(
  view: RunView,
  kind: SnapshotRef['kind'],
  max = MAX_SNAPSHOTS_OVER_EPOCHS,
): SnapshotRef[] {
  const order = view.run.config.stages.map((s) => s.name)
  const all = view.snapshots
    .filter((s) => s.kind === kind && order.includes(s.stage))
    .sort((a, b) => order.indexOf(a.stage) - order.indexOf(b.stage) || a.epochsCompleted - b.epochsCompleted)
  if (all.length <= max) return all
  const stride = all.length / max
  const kept = new Set<SnapshotRef>()
  for (let k = 0; k < max; k++) kept.add(all[Math.floor(k * stride)]!)
  for (const stage of order) {
    const last = all.filter((s) => s.stage === stage).at(-1)
    if (last) kept.add(last)
  }
  return all.filter((s) => kept.has(s))
}

type RecordOf<K extends SnapshotRef['kind']> = K extends 'attention' ? AttentionRecord : GateRecord

/**
 * Every snapshot of a kind (thinned for long runs), read through the store's cache, in stage and epoch order;
 * re-read as new ones arrive. Null while none has been read.
 */
export function useSnapshotSeries<K extends SnapshotRef['kind']>(
  view: RunView,
  kind: K,
  enabled = true,
): { records: RecordOf<K>[] | null; error: string | null } {
  const readSnapshot = useWorkbench((s) => s.readSnapshot)
  const refs = snapshotsInOrder(view, kind)
  const key = refs.map((r) => `${r.stage}/${r.epochsCompleted}`).join(',')
  const [state, setState] = useState<{ key: string; records: RecordOf<K>[]; error: string | null } | null>(
    null,
  )
  useEffect(() => {
    if (!enabled) return
    let live = true
    Promise.all(refs.map((ref) => readSnapshot(view.run.id, ref))).then(
      (records) => live && setState({ key, records: records as RecordOf<K>[], error: null }),
      (error: unknown) => live && setState({ key, records: [], error: (error as Error).message }),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [view.run.id, key, enabled, readSnapshot])
  return { records: state?.records ?? null, error: state?.error ?? null }
}
