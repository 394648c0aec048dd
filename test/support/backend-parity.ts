import * as tf from '@tensorflow/tfjs'
import { expect } from 'vitest'
import { createCheckNetwork, loadCheckData, runBackendCheck } from '../../src/main/worker/backend-check'

/** Logits and the gradient of the loss with respect to every variable of the seeded check network. */
async function forwardAndGradients(
  backend: string,
  images: Float32Array,
  labels: Int32Array,
): Promise<Float32Array[]> {
  await tf.setBackend(backend)
  const network = createCheckNetwork(1, 10)
  const x = tf.tensor4d(images, [labels.length, 28, 28, 1])
  const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10)
  const logits = network.predict(x)
  const { grads } = tf.variableGrads(
    () => tf.losses.softmaxCrossEntropy(y, network.predict(x)) as tf.Scalar,
    network.variables,
  )
  const outputs = [logits, ...network.variables.map((v) => grads[v.name]!)]
  const values = await Promise.all(outputs.map(async (t) => (await t.data()) as Float32Array))
  tf.dispose([x, y, ...outputs, ...network.variables])
  return values
}

/** Largest absolute difference relative to the largest reference magnitude. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  let diff = 0
  let scale = 0
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expected[i]!))
    scale = Math.max(scale, Math.abs(expected[i]!))
  }
  return diff / scale
}

/** Forward values and all gradients on `backend` agree with the cpu backend to `tolerance` (relative). */
export async function expectParityWithCpu(backend: string, tolerance: number): Promise<number> {
  const data = await loadCheckData(2)
  const images = Float32Array.from(data.images, (v) => v / 255)
  const labels = Int32Array.from(data.labels)
  const reference = await forwardAndGradients('cpu', images, labels)
  const actual = await forwardAndGradients(backend, images, labels)
  const errors = actual.map((values, i) => relativeError(values, reference[i]!))
  for (const error of errors) expect(error).toBeLessThan(tolerance)
  return Math.max(...errors)
}

/** A few training steps on real images lower the loss (means of the first and last quarter of steps). */
export async function expectTrainingLowersLoss(backend: string, steps: number): Promise<void> {
  await tf.setBackend(backend)
  const before = tf.memory().numTensors
  const result = await runBackendCheck(await loadCheckData(Math.ceil((steps * 32) / 10)), {
    steps,
    batchSize: 32,
  })
  expect(result.lastLoss).toBeLessThan(result.firstLoss - 0.05)
  // Every step's tensors were released, and the network's variables after the run.
  expect(tf.memory().numTensors).toBe(before)
}
