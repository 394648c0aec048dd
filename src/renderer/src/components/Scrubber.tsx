import { useEffect, useMemo } from 'react'
import type { SnapshotRef } from '../store'

export interface ScrubberValue {
  stage: string
  /** Epochs of the stage completed when the snapshot was taken. */
  epochsCompleted: number
}

/**
 * Stage and epoch of the snapshots on disk, in the run's stage order. Follows the newest snapshot while the
 * selection is null (live), and keeps a chosen one.
 */
export function useSnapshotChoices(
  snapshots: readonly SnapshotRef[],
  kind: SnapshotRef['kind'],
  stageOrder: readonly string[],
) {
  return useMemo(() => {
    const byStage = new Map<string, number[]>()
    for (const s of snapshots) {
      if (s.kind === kind) byStage.set(s.stage, [...(byStage.get(s.stage) ?? []), s.epochsCompleted])
    }
    const stages = stageOrder.filter((s) => byStage.has(s))
    const epochs = Object.fromEntries(
      stages.map((s) => [s, [...(byStage.get(s) ?? [])].sort((a, b) => a - b)]),
    )
    const lastStage = stages.at(-1)
    const latest: ScrubberValue | null = lastStage
      ? { stage: lastStage, epochsCompleted: epochs[lastStage]!.at(-1)! }
      : null
    return { stages, epochs, latest }
  }, [snapshots, kind, stageOrder])
}

export function Scrubber({
  choices,
  value,
  onChange,
}: {
  choices: ReturnType<typeof useSnapshotChoices>
  value: ScrubberValue | null
  onChange: (value: ScrubberValue | null) => void
}) {
  const shown = value ?? choices.latest
  const epochs = shown ? (choices.epochs[shown.stage] ?? []) : []
  const position = shown ? Math.max(0, epochs.indexOf(shown.epochsCompleted)) : 0
  useEffect(() => {
    // A chosen snapshot that is gone (rolled back on resume) falls back to following the newest.
    if (value && !choices.epochs[value.stage]?.includes(value.epochsCompleted)) onChange(null)
  }, [value, choices, onChange])
  if (!shown) return null
  return (
    <div className="row scrubber" role="group" aria-label="Stage and epoch">
      <label className="inline">
        Stage
        <select
          value={shown.stage}
          onChange={(e) =>
            onChange({ stage: e.target.value, epochsCompleted: choices.epochs[e.target.value]?.at(-1) ?? 1 })
          }
        >
          {choices.stages.map((s) => (
            <option key={s} value={s}>
              {s}
            </option>
          ))}
        </select>
      </label>
      <label className="inline grow">
        After epoch {shown.epochsCompleted} of {epochs.length}
        <input
          type="range"
          min={0}
          max={Math.max(0, epochs.length - 1)}
          value={position}
          disabled={epochs.length < 2}
          onChange={(e) =>
            onChange({ stage: shown.stage, epochsCompleted: epochs[Number(e.target.value)] ?? 1 })
          }
          aria-label="Epoch"
        />
      </label>
      <button type="button" className="link" disabled={value === null} onClick={() => onChange(null)}>
        {value === null ? 'following the newest' : 'follow the newest'}
      </button>
    </div>
  )
}
