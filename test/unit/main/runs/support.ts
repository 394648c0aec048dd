import type { CheckpointRecord } from '../../../../src/shared/records'
import type { RunConfig } from '../../../../src/shared/run-config'
import { modelBuild } from '../../../../src/main/engine/models'

/** A small checkpoint record of a config's first stage model: one weight tensor holding `values`. */
export function checkpointRecord(
  config: RunConfig,
  stage: string,
  epochsCompleted: number,
  values: number[],
): CheckpointRecord {
  return {
    kind: 'checkpoint',
    stage,
    epochsCompleted,
    manifest: {
      format: 'r2b-checkpoint',
      version: 2,
      stage,
      epochsCompleted,
      step: epochsCompleted * 10,
      model: modelBuild(config, config.stages[0]!.student),
      tensors: [{ name: 'w', group: 'weights', shape: [values.length], offset: 0 }],
    },
    data: Float32Array.from(values).buffer,
  }
}
