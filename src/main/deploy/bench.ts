/**
 * `bench deploy`: on the tfjs backend already initialised, side by side in one run,
 * - one binary 3×3 conv layer at ResNet-18 shapes (batch 1, stride 1): the packed kernels (sign-and-pack +
 *   XNOR-popcount conv) against tfjs's float conv2d of the same shape;
 * - the whole ResNet-18 (width 1, random weights, batch 1): the packed engine against the float graph's eval
 *   forward;
 * - the export's bytes against the float32 graph's.
 * On the CPU, also this CPU's XOR-popcount throughput and the bound it sets on each conv (its mismatch count at
 * that rate), against which the packed conv's time reads as a fraction of what the hardware allows.
 * Each time is a median over rounds that alternate the two sides, and includes reading the result back (what
 * an application waits for).
 */
import type { ModelBuild } from '../../shared/checkpoint'
import * as tf from '@tensorflow/tfjs'
import { saveCheckpoint } from '../engine/checkpoint'
import { ResNet18 } from '../engine/models'
import { binaryConvLayer } from './binary-conv'
import { float32Params, foldCheckpoint } from './fold'
import { decodeExport, encodeExport, packSignStream } from './format'
import { kernelsForBackend } from './kernels'
import {
  defaultPopcount,
  popcountMeter,
  wasmKernels,
  type PopcountMeter,
  type Popcount,
} from './kernels-wasm'
import { PackedModel, type BinaryKernels } from './packed-model'

export interface BenchDeployOptions {
  /** [spatial size, channels] of the conv layers: ResNet-18's four stages at 224 px input. */
  convShapes?: [number, number][]
  modelInput?: number
  modelChannels?: 1 | 3
  rounds?: number
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]!
}

async function timed(work: () => tf.Tensor): Promise<number> {
  const t0 = globalThis.performance.now()
  const out = work()
  await out.data()
  out.dispose()
  return globalThis.performance.now() - t0
}

/**
 * At least two calls and 200 ms: V8 first runs WebAssembly from its baseline compiler and swaps in optimised
 * code, compiled in the background, only at a later call, so one warm-up call can leave the timed rounds on
 * code about half as fast.
 */
async function warmUp(work: () => tf.Tensor): Promise<void> {
  const t0 = globalThis.performance.now()
  for (let calls = 0; calls < 2 || globalThis.performance.now() - t0 < 200; calls++) await timed(work)
}

/**
 * Median times of a and b over alternating rounds, after an untimed warm-up of each; with `alongside`, the
 * median of what it measures in each round too, so that it sees the same state of the machine.
 */
async function sideBySide(
  a: () => tf.Tensor,
  b: () => tf.Tensor,
  rounds: number,
  alongside?: () => number,
): Promise<[number, number, number]> {
  await warmUp(a)
  await warmUp(b)
  const ta: number[] = []
  const tb: number[] = []
  const tc: number[] = []
  for (let i = 0; i < rounds; i++) {
    ta.push(await timed(a))
    tb.push(await timed(b))
    if (alongside) tc.push(alongside())
  }
  return [median(ta), median(tb), alongside ? median(tc) : NaN]
}

const round = (v: number, digits = 2) => Number(v.toFixed(digits))

const geometricMean = (values: number[]) =>
  Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length)

async function convFigures(
  kernels: BinaryKernels,
  size: number,
  channels: number,
  rounds: number,
  meters: PopcountMeter[] = [],
): Promise<{ packedMs: number; floatMs: number; boundMs: number }> {
  const shape = [3, 3, channels, channels]
  const kernel = tf.randomUniform(
    shape as [number, number, number, number],
    -1,
    1,
    'float32',
    1,
  ) as tf.Tensor4D
  const signs = (await kernel.data()) as Float32Array
  const layer = binaryConvLayer(packSignStream(signs, shape), shape, 1, true)
  const prepared = kernels.prepare(layer)
  const x = tf.randomNormal([1, size, size, channels], 0, 1, 'float32', 2) as tf.Tensor4D
  const ones = tf.ones([channels])
  const epilogue = { channelScale: ones, spatial: null, alpha: null, bias: null, residual: null }
  // Every output's 3×3×c window in whole 64-bit words, at the faster of the popcounts' rates.
  const bits = size * size * channels * Math.ceil((9 * channels) / 64) * 64
  const bound = () => bits / Math.max(...meters.map((m) => m.bitsPerMs()))
  const [packedMs, floatMs, boundMs] = await sideBySide(
    () => kernels.conv(x, null, layer, prepared, epilogue),
    () => tf.conv2d(x, kernel, 1, 'same'),
    rounds,
    meters.length ? bound : undefined,
  )
  tf.dispose([kernel, x, ones])
  return { packedMs, floatMs, boundMs }
}

export async function benchDeploy(
  options: BenchDeployOptions = {},
): Promise<Record<string, number | string>> {
  const convShapes = options.convShapes ?? [
    [56, 64],
    [28, 128],
    [14, 256],
    [7, 512],
  ]
  const rounds = options.rounds ?? 5
  const input = options.modelInput ?? 32
  const channels = options.modelChannels ?? 3
  const kernels = await kernelsForBackend()
  const figures: Record<string, number | string> = {
    backend: tf.getBackend(),
    kernels: kernels.detail ? `${kernels.name} (${kernels.detail})` : kernels.name,
  }
  // On the CPU, the other way of counting bits too, for the record (the default is the one for this CPU).
  const other: Popcount = defaultPopcount() === 'scalar' ? 'simd' : 'scalar'
  const alternative = kernels.name === 'wasm' ? await wasmKernels(other) : null
  // On the CPU, the popcount bound, measured in the same rounds as each conv.
  const meters = kernels.name === 'wasm' ? [await popcountMeter('scalar'), await popcountMeter('simd')] : []
  const speedups: number[] = []
  const bounds: number[] = []
  for (const [size, c] of convShapes) {
    const { packedMs, floatMs, boundMs } = await convFigures(kernels, size, c, rounds, meters)
    const key = `conv_${size}x${size}x${c}`
    figures[`${key}_packed_ms`] = round(packedMs)
    figures[`${key}_float_ms`] = round(floatMs)
    figures[`${key}_speedup`] = round(floatMs / packedMs)
    speedups.push(floatMs / packedMs)
    if (meters.length) {
      figures[`${key}_popcount_bound_ms`] = round(boundMs, 3)
      figures[`${key}_bound_speedup`] = round(floatMs / boundMs)
      bounds.push(floatMs / boundMs)
    }
    if (alternative) {
      const figure = await convFigures(alternative, size, c, rounds)
      figures[`${key}_packed_${other}_popcount_ms`] = round(figure.packedMs)
    }
  }
  alternative?.dispose()
  // The geometric mean over the four stages' shapes.
  figures.binaryConvSpeedup = round(geometricMean(speedups))
  if (bounds.length) figures.binaryConvBound = round(geometricMean(bounds))

  const build: ModelBuild = {
    architecture: 'binary',
    activation: 'sign',
    weights: 'sign',
    scaling: 'gate',
    width: 1,
    stem: 'cifar',
    downsample: 'real',
    padValue: 1,
    steClip: 1,
    gateReduction: 8,
    weightScale: 'none',
    bnMomentum: 0.99,
    bnEpsilon: 1e-3,
    preluInit: 0.25,
    inputSize: input,
    channels,
    classes: 10,
    seed: 1,
  }
  const graph = new ResNet18(build, 'bench')
  const checkpoint = await saveCheckpoint(graph, { stage: 'bnn', epochsCompleted: 0, step: 0 })
  const folded = foldCheckpoint(checkpoint, {
    runId: 'bench',
    stage: 'bnn',
    classes: Array.from({ length: 10 }, (_, i) => String(i)),
    normalisation: { mean: Array(channels).fill(0), std: Array(channels).fill(1) },
  })
  const { bytes, report } = encodeExport(folded.meta, folded.tensors)
  const packed = new PackedModel(decodeExport(bytes), kernels)
  const images = tf.randomNormal([1, input, input, channels], 0, 1, 'float32', 3) as tf.Tensor4D
  try {
    const [packedMs, floatMs] = await sideBySide(
      () => packed.predict(images),
      () => graph.predict(images),
      rounds,
    )
    figures.model = `ResNet-18 width 1, ${input}x${input}x${channels}, batch 1`
    figures.model_packed_ms = round(packedMs)
    figures.model_float_ms = round(floatMs)
    figures.modelSpeedup = round(floatMs / packedMs)
  } finally {
    tf.dispose(images)
    packed.dispose()
    graph.dispose()
    kernels.dispose()
  }
  figures.exportBytes = report.fileBytes
  figures.exportMinimumBytes = report.minimumBytes
  figures.float32Bytes = float32Params(checkpoint) * 4
  figures.sizeRatio = round(figures.float32Bytes / report.fileBytes, 1)
  return figures
}
