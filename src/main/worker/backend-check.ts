/**
 * A small convolutional network trained for a few steps to prove the selected backend end to end: forward,
 * every gradient kernel a ResNet needs (conv filter and input gradients at strides 1 and 2, batch norm style
 * reductions, dense), an optimiser update, and async reads.
 */
import * as tf from '@tensorflow/tfjs'
import { FASHION_MNIST_CLASSES, FASHION_MNIST_SIZE, readFashionMnistClass } from '../datasets/fashion-mnist'

export interface CheckNetwork {
  variables: tf.Variable[]
  predict(images: tf.Tensor4D): tf.Tensor2D
}

/** conv3x3(8) → ReLU → conv3x3/2(16) → ReLU → conv1x1/2(16) → ReLU → global average pool → dense. */
export function createCheckNetwork(channels: number, classes: number, seed = 7): CheckNetwork {
  // Inside tidy so the initial values are released once the variables hold their own copy.
  const he = <R extends tf.Rank>(shape: number[], fanIn: number, offset: number) =>
    tf.tidy(() =>
      tf.variable(tf.randomNormal<tf.Rank>(shape, 0, Math.sqrt(2 / fanIn), 'float32', seed + offset)),
    ) as tf.Variable<R>
  const w1 = he<tf.Rank.R4>([3, 3, channels, 8], 9 * channels, 1)
  const w2 = he<tf.Rank.R4>([3, 3, 8, 16], 9 * 8, 2)
  const w3 = he<tf.Rank.R4>([1, 1, 16, 16], 16, 3)
  const wd = he<tf.Rank.R2>([16, classes], 16, 4)
  const bd = tf.tidy(() => tf.variable(tf.zeros([classes]))) as tf.Variable<tf.Rank.R1>
  return {
    variables: [w1, w2, w3, wd, bd],
    predict: (images) =>
      tf.tidy(() => {
        const a1 = tf.relu(tf.conv2d(images, w1, 1, 'same'))
        const a2 = tf.relu(tf.conv2d(a1, w2, 2, 'same'))
        const a3 = tf.relu(tf.conv2d(a2, w3, 2, 'valid'))
        return tf.add(tf.matMul(tf.mean(a3, [1, 2]) as tf.Tensor2D, wd), bd)
      }),
  }
}

export interface CheckStep {
  step: number
  steps: number
  loss: number
  stepMs: number
}

export interface CheckResult {
  firstLoss: number
  lastLoss: number
  meanStepMs: number
  imagesPerSecond: number
}

/**
 * Trains the check network on uint8 images [n, h, w, c] with integer labels, cycling through them in order.
 * Every step runs inside `optimizer.minimize` (a tidy scope); the loss is read asynchronously.
 */
export async function runBackendCheck(
  data: CheckData,
  options: { steps: number; batchSize: number; onStep?: (step: CheckStep) => void },
): Promise<CheckResult> {
  const [h, w, c] = data.shape
  const count = data.labels.length
  const network = createCheckNetwork(c, data.classes)
  const optimizer = tf.train.adam(0.01)
  const losses: number[] = []
  let totalMs = 0
  try {
    for (let step = 1; step <= options.steps; step++) {
      const start = ((step - 1) * options.batchSize) % count
      const idx = Array.from({ length: options.batchSize }, (_, i) => (start + i) % count)
      const pixels = new Float32Array(idx.length * h * w * c)
      const labels = new Int32Array(idx.length)
      idx.forEach((source, i) => {
        for (let p = 0; p < h * w * c; p++)
          pixels[i * h * w * c + p] = (data.images[source * h * w * c + p] ?? 0) / 255
        labels[i] = data.labels[source] ?? 0
      })
      const began = performance.now()
      const lossTensor = tf.tidy(() => {
        const x = tf.tensor4d(pixels, [idx.length, h, w, c])
        const y = tf.oneHot(tf.tensor1d(labels, 'int32'), data.classes)
        const returned = optimizer.minimize(
          () => tf.losses.softmaxCrossEntropy(y, network.predict(x)) as tf.Scalar,
          true,
          network.variables,
        )
        if (!returned) throw new Error('optimizer.minimize returned no loss')
        return returned
      })
      const loss = (await lossTensor.data())[0] ?? Number.NaN
      lossTensor.dispose()
      const stepMs = performance.now() - began
      totalMs += stepMs
      losses.push(loss)
      options.onStep?.({ step, steps: options.steps, loss, stepMs })
    }
  } finally {
    optimizer.dispose()
    network.variables.forEach((v) => v.dispose())
  }
  const meanStepMs = totalMs / options.steps
  // Mean of the first and last few steps: single-batch losses are noisy.
  const k = Math.max(1, Math.floor(losses.length / 4))
  const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length
  return {
    firstLoss: mean(losses.slice(0, k)),
    lastLoss: mean(losses.slice(-k)),
    meanStepMs,
    imagesPerSecond: (options.batchSize * 1000) / meanStepMs,
  }
}

export interface CheckData {
  images: Uint8Array
  labels: Uint8Array
  shape: [number, number, number]
  classes: number
}

/** A class-balanced, interleaved sample of the bundled Fashion-MNIST: `perClass` images of each class. */
export async function loadCheckData(perClass: number): Promise<CheckData> {
  const pixels = FASHION_MNIST_SIZE * FASHION_MNIST_SIZE
  const classes = FASHION_MNIST_CLASSES.length
  const images = new Uint8Array(perClass * classes * pixels)
  const labels = new Uint8Array(perClass * classes)
  for (let c = 0; c < classes; c++) {
    const all = await readFashionMnistClass(c)
    for (let i = 0; i < perClass; i++) {
      const slot = i * classes + c
      images.set(all.subarray(i * pixels, (i + 1) * pixels), slot * pixels)
      labels[slot] = c
    }
  }
  return { images, labels, shape: [FASHION_MNIST_SIZE, FASHION_MNIST_SIZE, 1], classes }
}
