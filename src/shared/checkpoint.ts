/**
 * A checkpoint as stored in a run folder and sent to a worker: a JSON manifest (which model, which stage
 * and epoch, where each tensor lies) and one little-endian float32 payload. Either engine writes and reads
 * this layout; tensors carry the tfjs layouts (conv kernels [kh, kw, in, out], dense kernels [in, out]).
 */
import { z } from 'zod'
import { ActivationQuantizer, StageName, type OptimizerKind } from './run-config'

/**
 * What a checkpoint's `optimizer` group holds per optimiser kind: for each slot, in this order, one tensor per
 * weight (in the model's order) named `<slot>/<weight>` and shaped as the weight. Adam keeps its first and
 * second moments; SGD its velocity (the momentum buffer v of v ← μ·v + g).
 */
export const OPTIMIZER_SLOTS = {
  adamw: ['m', 'v'],
  sgd: ['velocity'],
} as const satisfies Record<OptimizerKind, readonly string[]>

/** Everything needed to rebuild a model: plain JSON, stored in every checkpoint. */
export const ModelBuild = z.object({
  architecture: z.enum(['resnet', 'binary']),
  activation: ActivationQuantizer,
  weights: z.enum(['real', 'sign']),
  scaling: z.enum(['gate', 'learned', 'none']),
  width: z.number().positive().max(8),
  stem: z.enum(['imagenet', 'cifar']),
  downsample: z.enum(['real', 'binary']),
  padValue: z.union([z.literal(0), z.literal(1)]),
  steClip: z.number().positive(),
  gateReduction: z.int().positive(),
  weightScale: z.enum(['none', 'mean', 'learned']),
  bnMomentum: z.number().min(0).max(1),
  bnEpsilon: z.number().positive(),
  preluInit: z.number(),
  inputSize: z.int().positive(),
  channels: z.union([z.literal(1), z.literal(3)]),
  classes: z.int().min(2),
  seed: z.int().nonnegative(),
})
export type ModelBuild = z.infer<typeof ModelBuild>

export const CheckpointTensor = z.object({
  /** The parameter's name, shared by both engines (`block_3a.conv.kernel`; optimiser state `<slot>/…`, as
   * OPTIMIZER_SLOTS names the slots: `m/…` and `v/…` for Adam, `velocity/…` for SGD). */
  name: z.string().regex(/^[\w./-]+$/),
  group: z.enum(['weights', 'state', 'optimizer']),
  shape: z.array(z.int().nonnegative()),
  /** Element offset into the float32 payload. */
  offset: z.int().nonnegative(),
})
export type CheckpointTensor = z.infer<typeof CheckpointTensor>

export const CheckpointManifest = z.object({
  format: z.literal('r2b-checkpoint'),
  version: z.literal(2),
  stage: StageName,
  /** Epochs of the stage completed: training resumes at this epoch index. */
  epochsCompleted: z.int().nonnegative(),
  /** Optimiser steps completed. */
  step: z.int().nonnegative(),
  model: ModelBuild,
  tensors: z.array(CheckpointTensor),
})
export type CheckpointManifest = z.infer<typeof CheckpointManifest>

/** The manifest as the run store writes it: with the payload's checksum and size. */
export const StoredCheckpointManifest = CheckpointManifest.extend({
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  bytes: z.int().nonnegative(),
})

/** A format-1 manifest (`version: 1`, `epoch` for epochs completed) in format 2's terms. */
function migrateManifest(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || (value as { version?: unknown }).version !== 1)
    return value
  const { epoch, ...rest } = value as Record<string, unknown>
  return { ...rest, version: 2, epochsCompleted: epoch }
}

/** What readers parse a stored manifest with (either format), and a checkpoint sent by an older writer. */
export const ReadCheckpointManifest = z.preprocess(migrateManifest, StoredCheckpointManifest)

/** A checkpoint in memory: the manifest and its payload. */
export const Checkpoint = z.object({ manifest: CheckpointManifest, data: z.instanceof(ArrayBuffer) })
export type Checkpoint = z.infer<typeof Checkpoint>

/** The optimiser state slots a checkpoint holds, in their order (empty when it holds no optimiser state). */
export function stateSlots(manifest: CheckpointManifest): string[] {
  const slots: string[] = []
  for (const t of manifest.tensors) {
    if (t.group !== 'optimizer') continue
    const slot = t.name.slice(0, t.name.indexOf('/'))
    if (!slots.includes(slot)) slots.push(slot)
  }
  return slots
}

/** Problems with a payload against its manifest (size, tensors beyond its end); empty when it fits. */
export function payloadProblems(manifest: CheckpointManifest, byteLength: number): string[] {
  if (byteLength % 4 !== 0) return [`the payload is ${byteLength} bytes, not whole float32 values`]
  const floats = byteLength / 4
  return manifest.tensors
    .filter((t) => t.offset + t.shape.reduce((a, b) => a * b, 1) > floats)
    .map((t) => `tensor ${t.name} reaches beyond the payload's ${floats} values`)
}
