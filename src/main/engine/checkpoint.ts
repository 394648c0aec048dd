/**
 * Checkpoints as plain data: a JSON manifest and one float32 ArrayBuffer holding weights, BN moving statistics
 * and (optionally) the optimiser's state (OPTIMIZER_SLOTS). The engine never touches files; the run store
 * writes these.
 */
import * as tf from '@tensorflow/tfjs'
import { stateSlots, type Checkpoint, type CheckpointTensor } from '../../shared/checkpoint'
import { ResNet18 } from './models'
import type { Optimizer } from './optimizer'

export type { Checkpoint }

export async function saveCheckpoint(
  model: ResNet18,
  meta: { stage: string; epochsCompleted: number; step: number },
  optimizer: Optimizer | null = null,
): Promise<Checkpoint> {
  const entries: { name: string; group: CheckpointTensor['group']; tensor: tf.Tensor }[] = []
  for (const [name, v] of model.store.weights) entries.push({ name, group: 'weights', tensor: v })
  for (const [name, v] of model.store.state) entries.push({ name, group: 'state', tensor: v })
  const state = optimizer ? optimizer.state() : new Map<string, Map<string, tf.Tensor>>()
  for (const [slot, tensors] of state)
    for (const [name, tensor] of tensors)
      entries.push({ name: `${slot}/${name}`, group: 'optimizer', tensor })
  const values = await Promise.all(entries.map((e) => e.tensor.data() as Promise<Float32Array>))
  for (const tensors of state.values()) tf.dispose([...tensors.values()])
  const total = values.reduce((sum, v) => sum + v.length, 0)
  const data = new Float32Array(total)
  const tensors: CheckpointTensor[] = []
  let offset = 0
  entries.forEach((e, i) => {
    const v = values[i] as Float32Array
    data.set(v, offset)
    tensors.push({ name: e.name, group: e.group, shape: e.tensor.shape.slice(), offset })
    offset += v.length
  })
  return {
    manifest: {
      format: 'r2b-checkpoint',
      version: 2,
      stage: meta.stage,
      epochsCompleted: meta.epochsCompleted,
      step: optimizer ? optimizer.step : meta.step,
      model: { ...model.build },
      tensors,
    },
    data: data.buffer,
  }
}

function tensorOf(checkpoint: Checkpoint, entry: CheckpointTensor): tf.Tensor {
  const size = entry.shape.reduce((a, b) => a * b, 1)
  const values = new Float32Array(checkpoint.data, entry.offset * 4, size)
  return tf.tensor(values, entry.shape, 'float32')
}

/**
 * Assigns a checkpoint's weights and BN statistics (and the optimiser's state, when given an optimiser) to a
 * model built the same way. Every variable of the model must be present with the same shape, and the state
 * must be of the optimiser's kind.
 */
export function restoreCheckpoint(
  model: ResNet18,
  checkpoint: Checkpoint,
  optimizer: Optimizer | null = null,
): void {
  if (checkpoint.manifest.format !== 'r2b-checkpoint') throw new Error('not an r2b checkpoint')
  const entries = new Map(checkpoint.manifest.tensors.map((t) => [`${t.group}:${t.name}`, t]))
  const read = (key: string, shape: number[]): tf.Tensor => {
    const entry = entries.get(key)
    if (!entry) throw new Error(`checkpoint of stage ${checkpoint.manifest.stage} has no ${key}`)
    if (entry.shape.join('x') !== shape.join('x')) {
      throw new Error(`${key}: checkpoint shape [${entry.shape}] vs model [${shape}]`)
    }
    return tensorOf(checkpoint, entry)
  }
  const assign = (key: string, variable: tf.Variable) => {
    const value = read(key, variable.shape)
    variable.assign(value)
    value.dispose()
  }
  for (const [name, v] of model.store.weights) assign(`weights:${name}`, v)
  for (const [name, v] of model.store.state) assign(`state:${name}`, v)
  if (optimizer) {
    const held = stateSlots(checkpoint.manifest)
    if (held.length && held.join() !== optimizer.slots.join())
      throw new Error(
        `checkpoint of stage ${checkpoint.manifest.stage} holds optimiser state ${held.join(', ')}, not the ` +
          `${optimizer.spec.kind} optimiser's ${optimizer.slots.join(', ')}`,
      )
    const loaded: tf.Tensor[] = []
    optimizer.setState((slot, name) => {
      const tensor = read(`optimizer:${slot}/${name}`, model.store.weights.get(name)?.shape ?? [])
      loaded.push(tensor)
      return tensor
    }, checkpoint.manifest.step)
    tf.dispose(loaded)
  }
}

/** Builds the model a checkpoint describes and loads it. */
export function modelFromCheckpoint(
  checkpoint: Checkpoint,
  label: string = checkpoint.manifest.stage,
): ResNet18 {
  const model = new ResNet18(checkpoint.manifest.model, label)
  restoreCheckpoint(model, checkpoint)
  return model
}

/**
 * Initialises `target` from `source` wherever a variable has the same local name and shape (a fully binary
 * student from its sign-activation predecessor: same names, the latent weights become binarised). Returns the
 * names that had no counterpart.
 */
export function copyMatchingWeights(source: ResNet18, target: ResNet18): string[] {
  const missing: string[] = []
  const copy = (from: Map<string, tf.Variable>, to: Map<string, tf.Variable>) => {
    for (const [name, v] of to) {
      const s = from.get(name)
      if (s && s.shape.join('x') === v.shape.join('x')) v.assign(s)
      else missing.push(name)
    }
  }
  copy(source.store.weights, target.store.weights)
  copy(source.store.state, target.store.state)
  return missing
}
