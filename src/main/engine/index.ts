/**
 * The engine's public surface, for the training worker and the CLI. Everything is pure tfjs: callers choose
 * and initialise the backend, supply batches through a DataSource, and persist the plain records yielded.
 */
export type { Batch } from './batch'
export type { DataSource } from './data'
export { memoryDataSource } from './data'
export { runPipeline, type PipelineOptions, type PipelineResult } from './pipeline'
export { runStage, StageTrainer, evaluate, type StageOptions, type StopSignal } from './stage'
export {
  saveCheckpoint,
  restoreCheckpoint,
  modelFromCheckpoint,
  copyMatchingWeights,
  type Checkpoint,
} from './checkpoint'
export { inspectImage, type InspectOptions } from './inspect'
export { ResNet18, modelBuild, TRANSFER_POINTS } from './models'
export { summariseModel, summaryBuild, formatSummary, type SummaryOptions } from './summary'
export { benchTrain, type BenchTrainOptions } from './bench'
