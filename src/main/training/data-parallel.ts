/**
 * Data-parallel sessions (the PyTorch engine under torchrun): how many processes a session trains in, and
 * whether a run's config can be shared among them. The config's batch is the global batch, so every stage's
 * batch must split evenly; the tfjs engine trains in one process.
 */
import { availableParallelism } from 'node:os'
import type { TorchEngineReport } from '../../shared/backend'
import type { RunConfig } from '../../shared/run-config'
import type { DataParallel, RunMeta } from '../../shared/runs'
import { TrainingError } from './errors'

export interface SessionOptions {
  /** Processes to train in (PyTorch engine); default: as the run last trained on this machine, else one. */
  dataParallel?: DataParallel
}

/**
 * The processes a session trains in. A run resumes as it last trained here unless told otherwise; one that
 * trained across nodes (a cluster job) resumes here in one process.
 */
export function dataParallelOf(meta: RunMeta, asked: DataParallel | undefined): DataParallel | null {
  const last = meta.environment.distributed
  const parallel =
    asked ??
    (last && last.nodes === 1 ? { processes: last.worldSize, syncBatchNorm: last.syncBatchNorm } : null)
  checkDataParallel(meta.config, parallel)
  return parallel && parallel.processes > 1 ? parallel : null
}

/** Refuses processes the run cannot train in, before anything is written. */
export function checkDataParallel(config: RunConfig, parallel: DataParallel | null | undefined): void {
  if (!parallel || parallel.processes === 1) return
  if (config.engine !== 'torch')
    throw new TrainingError(
      "the tfjs engine trains in one process: data-parallel training is the PyTorch engine's (create the run with --engine torch)",
    )
  for (const stage of config.stages)
    if (stage.batchSize % parallel.processes !== 0)
      throw new TrainingError(
        `stage ${stage.name} has a batch of ${stage.batchSize}, which ${parallel.processes} processes cannot share evenly: choose a process count that divides it, or change the batch with --set stages.*.batchSize=N`,
      )
}

/**
 * Refuses more processes than this machine has for them: one per GPU, or on a CPU one per core (each rank
 * takes its share of the cores; more would only oversubscribe them).
 */
export function checkProcessesFit(parallel: DataParallel | null, torch: TorchEngineReport): void {
  if (!parallel) return
  const gpus = torch.devices.filter((d) => d.startsWith(`${torch.defaultDevice}:`)).length
  const onGpu = torch.defaultDevice === 'cuda'
  const have = onGpu ? gpus : availableParallelism()
  if (parallel.processes > have)
    throw new TrainingError(
      `${parallel.processes} processes, but this machine has ${have} ${onGpu ? 'CUDA GPUs' : 'CPU cores'}: use --nproc ${have} or fewer, or \`launch\` the run on a cluster`,
    )
}
