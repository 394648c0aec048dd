/**
 * The settings every training test shares: a narrow network, a small evaluation, and per stage a few
 * epochs of a few steps, so a whole chain trains in seconds on two CPU cores.
 */
export function tinySettings(options: {
  stages: number
  epochs: number | number[]
  steps: number | number[]
  batchSize?: number
}): string[] {
  const pick = (value: number | number[], i: number) => (Array.isArray(value) ? (value[i] as number) : value)
  const set = [
    'model.width=0.0625',
    'data.testLimit=40',
    'eval.probes=2',
    'eval.gateSubset=20',
    'eval.batchSize=40',
  ]
  for (let i = 0; i < options.stages; i++)
    set.push(
      `stages.${i}.epochs=${pick(options.epochs, i)}`,
      `stages.${i}.stepsPerEpoch=${pick(options.steps, i)}`,
      `stages.${i}.batchSize=${options.batchSize ?? 16}`,
    )
  return set
}

/** The same budget for every stage of any pipeline (`stages.*.…`), as an ablation gives every row. */
export function tinyBudget(options: { epochs: number; steps: number; batchSize?: number }): string[] {
  return [
    'model.width=0.0625',
    'data.testLimit=40',
    'eval.probes=2',
    'eval.gateSubset=20',
    'eval.batchSize=40',
    `stages.*.epochs=${options.epochs}`,
    `stages.*.stepsPerEpoch=${options.steps}`,
    `stages.*.batchSize=${options.batchSize ?? 16}`,
  ]
}
