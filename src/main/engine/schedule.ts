/** Learning-rate schedules as pure functions of the (fractional) epoch. */
import type { ScheduleSpec } from '../../shared/run-config'

/**
 * The multiplier on the base learning rate at a fractional epoch: linear warm-up from 0 over `warmupEpochs`,
 * then constant, step decay (×factor at each milestone passed) or cosine decay to 0 at `totalEpochs`.
 */
export function scheduleMultiplier(spec: ScheduleSpec, epoch: number, totalEpochs: number): number {
  if (spec.warmupEpochs > 0 && epoch < spec.warmupEpochs) return epoch / spec.warmupEpochs
  switch (spec.kind) {
    case 'constant':
      return 1
    case 'step':
      return spec.factor ** spec.milestones.filter((m) => epoch >= m).length
    case 'cosine': {
      const span = totalEpochs - spec.warmupEpochs
      if (span <= 0) return 1
      const progress = Math.min(1, Math.max(0, (epoch - spec.warmupEpochs) / span))
      return 0.5 * (1 + Math.cos(Math.PI * progress))
    }
  }
}
