/**
 * The other direction: a checkpoint the PyTorch engine wrote loads into the tfjs engine. python/tests writes
 * <dir>/checkpoint/ (the run store's folder format, optimiser state included) and <dir>/input.{json,bin}
 * (images, NHWC); this script builds the model from the checkpoint's ModelBuild, restores weights, BN
 * statistics and the optimiser's state (Adam's moments or SGD's velocity, as the checkpoint holds), and writes to <dir>/tfjs.{json,bin} the inference-mode logits, attention maps and
 * gates and the training-mode logits, and to <dir>/resaved/ the checkpoint saved again by tfjs.
 *
 *   npx tsx test/conformance/roundtrip.ts [--backend wasm|cpu] <dir>...
 */
import { join, resolve } from 'node:path'
import * as tf from '@tensorflow/tfjs'
import { attentionMap } from '../../src/main/engine/attention'
import { modelFromCheckpoint, restoreCheckpoint, saveCheckpoint } from '../../src/main/engine/checkpoint'
import { forwardContext } from '../../src/main/engine/layers'
import { TRANSFER_POINTS } from '../../src/main/engine/models'
import { Optimizer } from '../../src/main/engine/optimizer'
import { initBackend } from '../../src/main/backend/backend'
import type { BackendRequest } from '../../src/shared/backend'
import { OPTIMIZER_SLOTS, stateSlots } from '../../src/shared/checkpoint'
import { OptimizerKind, OptimizerSpec } from '../../src/shared/run-config'
import { TensorBundle, readBundle, readCheckpointDir, writeCheckpointDir } from './bundle'

async function roundtrip(dir: string): Promise<void> {
  const checkpoint = await readCheckpointDir(join(dir, 'checkpoint'))
  const model = modelFromCheckpoint(checkpoint, 'roundtrip')
  // The stage optimiser's parameter list (StageTrainer's): every weight, in store order; its kind the one
  // whose state the checkpoint holds.
  const held = stateSlots(checkpoint.manifest).join()
  const kind = OptimizerKind.options.find((k) => OPTIMIZER_SLOTS[k].join() === held) ?? 'adamw'
  const optimizer = new Optimizer(
    OptimizerSpec.parse({ kind }),
    [...model.store.weights].map(([name, variable]) => ({
      name,
      variable,
      decay: model.store.decayed.has(name),
      clip: model.store.binaryKernels.has(name),
    })),
  )
  const hasMoments = checkpoint.manifest.tensors.some((t) => t.group === 'optimizer')
  if (hasMoments) restoreCheckpoint(model, checkpoint, optimizer)

  const input = (await readBundle(dir, 'input')).get('images')!
  const images = tf.tensor4d(input.data, input.shape as [number, number, number, number])
  const out = new TensorBundle()
  const put = (name: string, t: tf.Tensor) => out.add(name, t.shape.slice(), t.dataSync() as Float32Array)
  tf.tidy(() => {
    const result = model.forward(images, forwardContext(false))
    put('eval/logits', result.logits)
    result.points.forEach((p, j) => put(`eval/map/${TRANSFER_POINTS[j]}`, attentionMap(p, 'larq')))
    for (const g of result.gates) put(`eval/gate/${g.block}`, g.values)
    put('train/logits', model.forward(images, forwardContext(true)).logits)
  })
  await out.write(dir, 'tfjs')
  const meta = {
    stage: checkpoint.manifest.stage,
    epochsCompleted: checkpoint.manifest.epochsCompleted,
    step: checkpoint.manifest.step,
  }
  await writeCheckpointDir(
    join(dir, 'resaved'),
    await saveCheckpoint(model, meta, hasMoments ? optimizer : null),
  )
  images.dispose()
  optimizer.dispose()
  model.dispose()
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  let backend = 'wasm'
  if (args[0] === '--backend') {
    backend = args[1] ?? ''
    args.splice(0, 2)
  }
  if (args.length === 0)
    throw new Error('usage: tsx test/conformance/roundtrip.ts [--backend wasm|cpu] <dir>...')
  await initBackend(backend as BackendRequest)
  for (const dir of args) await roundtrip(resolve(dir))
}

main().catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
