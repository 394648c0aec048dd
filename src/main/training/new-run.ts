/**
 * Turning a user's choice (dataset, preset, pipeline, overrides) into a validated run on disk. Shared by the
 * CLI and the API host, so both refuse the same bad input with the same words.
 */
import type { NewRunRequest } from '../../shared/api'
import { checkDataParallel } from './data-parallel'
import { ConfigError, makeRunConfig, type ConfigOverride, type RunConfig } from '../../shared/run-config'
import { DisplayName } from '../../shared/names'
import type { RunMeta } from '../../shared/runs'
import { DatasetError } from '../datasets/errors'
import { BUNDLED_ID } from '../datasets/fashion-mnist'
import { ensureBundledDataset } from '../datasets/import'
import { readManifest } from '../datasets/store'
import type { RunStore } from '../runs/run-store'
import { checkDatasetFits } from './dataset-fit'
import { TrainingError } from './errors'
import { torchEngineInfo } from './torch-engine'

export async function createRun(store: RunStore, request: NewRunRequest): Promise<RunMeta> {
  const { config, name } = await newRunConfig(store.home, request, { engineHere: true })
  return store.create(config, { name })
}

/**
 * The validated config (and name) of a new run on a dataset of `home`. `engineHere`: the run will train on
 * this machine, so its engine must be available here (a run `launch`ed for a cluster trains elsewhere).
 */
export async function newRunConfig(
  home: string,
  request: NewRunRequest,
  options: { engineHere: boolean },
): Promise<{ config: RunConfig; name: string | undefined }> {
  let manifest
  try {
    manifest =
      request.dataset === BUNDLED_ID
        ? await ensureBundledDataset({ home })
        : await readManifest(request.dataset, home)
  } catch (error) {
    if (error instanceof DatasetError) {
      throw new TrainingError(
        `${error.message}; see \`npm run r2b -- datasets\` or import one with \`npm run r2b -- import <path>\``,
      )
    }
    throw error
  }
  const [size, , channels] = manifest.shape
  // A preset that crops (imagenet-paper) keeps its input size and records the store's; any other takes the
  // store's size as its input.
  const preset = makeRunConfig({ preset: request.preset }).data
  const sizes: ConfigOverride[] =
    preset.storedSize > 0
      ? [
          { key: 'data.storedSize', value: size },
          { key: 'data.inputSize', value: Math.min(preset.inputSize, size) },
        ]
      : [{ key: 'data.inputSize', value: size }]
  // The dataset decides the input: its size, channels and classes come first, the user's overrides after.
  const fromDataset: ConfigOverride[] = [
    { key: 'data.dataset', value: manifest.id },
    ...sizes,
    { key: 'data.channels', value: channels },
    { key: 'data.classes', value: manifest.classes.length },
    ...(request.engine ? [{ key: 'engine', value: request.engine }] : []),
  ]
  let config
  try {
    config = makeRunConfig({
      preset: request.preset,
      pipeline: request.pipeline,
      downsample: request.downsample,
      teacherRecipe: request.teacherRecipe,
      seed: request.seed,
      set: [...fromDataset, ...(request.set ?? [])],
    })
  } catch (error) {
    if (error instanceof ConfigError) throw new TrainingError(error.message)
    throw error
  }
  checkDatasetFits(config, manifest)
  checkDataParallel(config, request.dataParallel)
  if (config.engine === 'torch' && options.engineHere) {
    const torch = await torchEngineInfo()
    if (!torch.available) throw new TrainingError(`the run would train on PyTorch, but ${torch.reason}`)
  }
  let name: string | undefined
  if (request.name !== undefined) {
    const parsed = DisplayName.safeParse(request.name)
    if (!parsed.success) throw new TrainingError(`run name: ${parsed.error.issues[0]?.message}`)
    name = parsed.data
  }
  return { config, name }
}
