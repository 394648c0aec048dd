import { parseStageRef, type RunConfig, type StageRef } from '../../../shared/run-config'

/** Display helpers of the UI: durations, percentages, and who teaches whom. */

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—'
  if (seconds < 60) return `${Math.round(seconds)} s`
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`
  if (seconds >= 2 * 86_400) return `${Math.round(seconds / 86_400).toLocaleString('en-US')} days`
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`
}

export function percent(value: number | null | undefined): string {
  return value === null || value === undefined || !Number.isFinite(value)
    ? '—'
    : `${(value * 100).toFixed(1)}%`
}

/** Who teaches whom in a config: per stage, its teacher and the stage it starts from. */
export function stageChain(config: RunConfig) {
  const describe = (ref: StageRef) => {
    const target = parseStageRef(ref)
    return target.kind === 'none'
      ? null
      : target.kind === 'stage'
        ? target.stage
        : `run ${target.run}/${target.stage}`
  }
  return config.stages.map((stage) => ({
    name: stage.name,
    teacher: describe(stage.teacher),
    init: describe(stage.init),
    student: stage.student,
    losses: stage.losses,
    epochs: stage.epochs,
  }))
}

/** Sizes in binary units (1 KiB = 1024 bytes), the one way the UI writes them. */
export function formatBytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(2)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${n.toFixed(0)} B`
}
