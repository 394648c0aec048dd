/**
 * Explicit, variable-based layers. Each layer owns named variables in a ParamStore and applies itself to a
 * tensor under a ForwardContext, which says whether this is a training pass (batch statistics, collected BN
 * updates) and lets callers observe named intermediate tensors (tap) or per-layer cost rows (trace).
 */
import * as tf from '@tensorflow/tfjs'
import type { ActivationQuantizer } from '../../shared/run-config'
import type { SummaryRow } from '../../shared/records'
import { conv2d } from './conv'
import { samePadding } from './padding'
import { isBinaryActivation, quantizeActivation, quantizeWeights, type WeightScale } from './quantizers'

export interface BnUpdate {
  layer: BatchNorm
  mean: tf.Tensor1D
  variance: tf.Tensor1D
}

export interface ForwardContext {
  training: boolean
  /** Batch statistics of a training pass, applied to the moving statistics once the step is done. */
  bnUpdates: BnUpdate[]
  /** Sees named intermediate tensors (conv inputs and kernels, gate values); it must tf.keep what it stores. */
  tap?: (name: string, tensor: tf.Tensor) => void
  /** Receives one cost row per layer (for the summary); called with batch-1 shapes. */
  trace?: (row: SummaryRow) => void
}

export function forwardContext(training: boolean, extra: Partial<ForwardContext> = {}): ForwardContext {
  return { training, bnUpdates: [], ...extra }
}

/** Moves the BN moving statistics by one step and frees the batch statistics. */
export function applyBnUpdates(ctx: ForwardContext): void {
  for (const { layer, mean, variance } of ctx.bnUpdates) {
    tf.tidy(() => {
      const m = layer.momentum
      layer.movingMean.assign(tf.add(tf.mul(layer.movingMean, m), tf.mul(mean, 1 - m)))
      layer.movingVariance.assign(tf.add(tf.mul(layer.movingVariance, m), tf.mul(variance, 1 - m)))
    })
    mean.dispose()
    variance.dispose()
  }
  ctx.bnUpdates.length = 0
}

function hashName(name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}

let storeCounter = 0

/**
 * The variables of one model instance. tfjs registers variables globally by name, so each store prefixes its
 * names with a unique id; the local names (without prefix) are what checkpoints use.
 */
export class ParamStore {
  /** Trainable variables by local name. */
  readonly weights = new Map<string, tf.Variable>()
  /** Non-trainable state (BN moving statistics) by local name. */
  readonly state = new Map<string, tf.Variable>()
  /** Local names of variables that take weight decay (conv and dense kernels). */
  readonly decayed = new Set<string>()
  /** Local names of latent kernels that are binarised by sign: clipped after each update when enabled. */
  readonly binaryKernels = new Set<string>()
  private readonly prefix: string

  constructor(
    label: string,
    readonly seed: number,
  ) {
    this.prefix = `${label}#${++storeCounter}`
  }

  /** A deterministic seed per variable: the model seed and the variable's local name, not creation order. */
  seedFor(name: string): number {
    return (hashName(name) ^ Math.imul(this.seed + 1, 0x9e3779b1)) >>> 0
  }

  weight<R extends tf.Rank>(
    name: string,
    init: tf.Tensor<R>,
    options: { decay?: boolean } = {},
  ): tf.Variable<R> {
    if (this.weights.has(name) || this.state.has(name)) throw new Error(`duplicate variable ${name}`)
    const variable = tf.variable(init, true, `${this.prefix}/${name}`)
    init.dispose()
    this.weights.set(name, variable as tf.Variable)
    if (options.decay) this.decayed.add(name)
    return variable
  }

  stat<R extends tf.Rank>(name: string, init: tf.Tensor<R>): tf.Variable<R> {
    if (this.weights.has(name) || this.state.has(name)) throw new Error(`duplicate variable ${name}`)
    const variable = tf.variable(init, false, `${this.prefix}/${name}`)
    init.dispose()
    this.state.set(name, variable as tf.Variable)
    return variable
  }

  dispose(): void {
    for (const v of this.weights.values()) v.dispose()
    for (const v of this.state.values()) v.dispose()
    this.weights.clear()
    this.state.clear()
  }
}

// Keras initialisers draw from a normal truncated at 2σ, with σ corrected for the truncation.
const TRUNCATION_CORRECTION = 0.8796256610342398

export function glorotNormal<R extends tf.Rank>(
  shape: number[],
  fanIn: number,
  fanOut: number,
  seed: number,
): tf.Tensor<R> {
  return tf.truncatedNormal(
    shape as tf.ShapeMap[R],
    0,
    Math.sqrt(2 / (fanIn + fanOut)) / TRUNCATION_CORRECTION,
    'float32',
    seed,
  )
}

export function heNormal<R extends tf.Rank>(shape: number[], fanIn: number, seed: number): tf.Tensor<R> {
  return tf.truncatedNormal(
    shape as tf.ShapeMap[R],
    0,
    Math.sqrt(2 / fanIn) / TRUNCATION_CORRECTION,
    'float32',
    seed,
  )
}

/** A summary row of a layer without parameters or arithmetic worth counting (pooling, for instance). */
export function emptyRow(name: string, kind: string, outputShape: number[]): SummaryRow {
  return {
    name,
    kind,
    inputPrecision: 32,
    outputShape,
    binaryParams: 0,
    floatParams: 0,
    nonTrainableParams: 0,
    memoryBytes: 0,
    bops: 0,
    flops: 0,
  }
}

function withMemory(row: SummaryRow): SummaryRow {
  return { ...row, memoryBytes: row.binaryParams / 8 + (row.floatParams + row.nonTrainableParams) * 4 }
}

export function traceRow(ctx: ForwardContext, row: SummaryRow): void {
  ctx.trace?.(withMemory(row))
}

export class BatchNorm {
  readonly gamma: tf.Variable<tf.Rank.R1>
  readonly beta: tf.Variable<tf.Rank.R1>
  readonly movingMean: tf.Variable<tf.Rank.R1>
  readonly movingVariance: tf.Variable<tf.Rank.R1>

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly channels: number,
    readonly momentum: number,
    readonly epsilon: number,
  ) {
    this.gamma = store.weight(`${name}.gamma`, tf.ones([channels]) as tf.Tensor1D)
    this.beta = store.weight(`${name}.beta`, tf.zeros([channels]) as tf.Tensor1D)
    this.movingMean = store.stat(`${name}.moving_mean`, tf.zeros([channels]) as tf.Tensor1D)
    this.movingVariance = store.stat(`${name}.moving_variance`, tf.ones([channels]) as tf.Tensor1D)
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    let y: tf.Tensor4D
    if (ctx.training) {
      const { mean, variance } = tf.moments(x, [0, 1, 2])
      ctx.bnUpdates.push({
        layer: this,
        mean: tf.keep(mean as tf.Tensor1D),
        variance: tf.keep(variance as tf.Tensor1D),
      })
      // Written out rather than tf.batchNorm: its gradient tiles every operand to the input's shape, which
      // cost about a fifth of a training step on wasm; broadcasting gradients reduce instead.
      const scale = tf.mul(this.gamma, tf.rsqrt(tf.add(variance, this.epsilon)))
      y = tf.add(tf.mul(x, scale), tf.sub(this.beta, tf.mul(mean, scale)))
    } else {
      y = tf.batchNorm4d(x, this.movingMean, this.movingVariance, this.beta, this.gamma, this.epsilon)
    }
    traceRow(ctx, {
      ...emptyRow(this.name, 'BatchNormalization', y.shape.slice(1)),
      floatParams: 2 * this.channels,
      nonTrainableParams: 2 * this.channels,
    })
    return y
  }
}

export interface QuantConvOptions {
  inChannels: number
  filters: number
  kernelSize: number
  strides: number
  inputQuantizer: ActivationQuantizer
  kernelQuantizer: 'real' | 'sign'
  weightScale: WeightScale
  /** Value binary-activation inputs are padded with. */
  padValue: 0 | 1
  steClip: number
}

/**
 * larq's QuantConv2D without bias: q(input) ⊛ q(kernel), 'same' geometry. With ±1 inputs and padValue 1 the
 * quantized input is padded with +1 explicitly and convolved 'valid', so every input the kernel sees is ±1.
 */
export class QuantConv2d {
  readonly kernel: tf.Variable<tf.Rank.R4>
  readonly scale: tf.Variable<tf.Rank.R1> | null

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly options: QuantConvOptions,
  ) {
    const { kernelSize: k, inChannels, filters } = options
    const shape = [k, k, inChannels, filters]
    this.kernel = store.weight(
      `${name}.kernel`,
      glorotNormal<tf.Rank.R4>(shape, k * k * inChannels, k * k * filters, store.seedFor(name)),
      { decay: true },
    )
    if (options.kernelQuantizer === 'sign') store.binaryKernels.add(`${name}.kernel`)
    this.scale =
      options.kernelQuantizer === 'sign' && options.weightScale === 'learned'
        ? store.weight(`${name}.weight_scale`, tf.ones([filters]) as tf.Tensor1D)
        : null
  }

  get binaryInput(): boolean {
    return isBinaryActivation(this.options.inputQuantizer)
  }

  get binaryKernel(): boolean {
    return this.options.kernelQuantizer === 'sign'
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const { kernelSize: k, strides, inputQuantizer, padValue, steClip } = this.options
    const input = quantizeActivation(x, inputQuantizer, steClip) as tf.Tensor4D
    const kernel = this.binaryKernel
      ? quantizeWeights(this.kernel, this.options.weightScale, this.scale ?? undefined)
      : this.kernel
    ctx.tap?.(`${this.name}.input`, input)
    ctx.tap?.(`${this.name}.kernel`, kernel)
    const [top, bottom] = samePadding(x.shape[1], k, strides)
    const [left, right] = samePadding(x.shape[2], k, strides)
    const padded = top + bottom + left + right > 0
    let y: tf.Tensor4D
    if (padded && this.binaryInput && padValue === 1) {
      const withOnes = tf.pad(
        input,
        [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ],
        1,
      )
      y = conv2d(withOnes, kernel, strides, 'valid')
    } else {
      y = conv2d(input, kernel, strides, 'same')
    }
    ctx.tap?.(`${this.name}.output`, y)
    const macs = y.shape[1] * y.shape[2] * k * k * this.options.inChannels * this.options.filters
    const binary = this.binaryKernel
    const kernelParams = k * k * this.options.inChannels * this.options.filters
    traceRow(ctx, {
      ...emptyRow(
        this.name,
        binary ? 'QuantConv2D' : this.binaryInput ? 'QuantConv2D (real weights)' : 'Conv2D',
        y.shape.slice(1),
      ),
      inputPrecision: this.binaryInput ? 1 : 32,
      binaryParams: binary ? kernelParams : 0,
      floatParams: (binary ? 0 : kernelParams) + (this.scale ? this.options.filters : 0),
      bops: binary && this.binaryInput ? macs : 0,
      flops: binary && this.binaryInput ? 0 : macs,
    })
    return y
  }
}

export class Dense {
  readonly kernel: tf.Variable<tf.Rank.R2>
  readonly bias: tf.Variable<tf.Rank.R1> | null

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inUnits: number,
    readonly units: number,
    options: { bias: boolean; init: 'glorot' | 'he' },
  ) {
    const seed = store.seedFor(name)
    const init =
      options.init === 'he'
        ? heNormal<tf.Rank.R2>([inUnits, units], inUnits, seed)
        : glorotNormal<tf.Rank.R2>([inUnits, units], inUnits, units, seed)
    this.kernel = store.weight(`${name}.kernel`, init, { decay: true })
    this.bias = options.bias ? store.weight(`${name}.bias`, tf.zeros([units]) as tf.Tensor1D) : null
  }

  apply(x: tf.Tensor2D, ctx: ForwardContext, traced = true): tf.Tensor2D {
    const y = tf.matMul(x, this.kernel)
    const out = this.bias ? tf.add<tf.Tensor2D>(y, this.bias) : y
    if (traced) {
      traceRow(ctx, {
        ...emptyRow(this.name, 'Dense', [this.units]),
        floatParams: this.inUnits * this.units + (this.bias ? this.units : 0),
        flops: this.inUnits * this.units,
      })
    }
    return out as tf.Tensor2D
  }
}

/** Per-channel PReLU, slopes shared over space (Keras `shared_axes=[1, 2]`). */
export class PReLU {
  readonly alpha: tf.Variable<tf.Rank.R1>

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly channels: number,
    init: number,
  ) {
    this.alpha = store.weight(`${name}.alpha`, tf.fill([channels], init) as tf.Tensor1D)
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    // prelu's typing wants alpha of x's rank; a [C] slope broadcasts over N, H, W.
    const y = tf.prelu(x, this.alpha as unknown as tf.Tensor4D)
    traceRow(ctx, { ...emptyRow(this.name, 'PReLU', y.shape.slice(1)), floatParams: this.channels })
    return y
  }
}

/** The strong baseline's learned scale (XNOR-Net++ as larq zoo factorises it): scale_h · scale_w · scale_c. */
export class LearnedScale {
  readonly h: tf.Variable
  readonly w: tf.Variable
  readonly c: tf.Variable

  constructor(
    store: ParamStore,
    readonly name: string,
    height: number,
    width: number,
    channels: number,
  ) {
    this.h = store.weight(`${name}.scale_h`, tf.ones([height, 1, 1]))
    this.w = store.weight(`${name}.scale_w`, tf.ones([1, width, 1]))
    this.c = store.weight(`${name}.scale_c`, tf.ones([1, 1, channels]))
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const y = tf.mul(x, tf.mul(tf.mul(this.h, this.w), this.c)) as tf.Tensor4D
    const [, height, width, channels] = y.shape
    traceRow(ctx, {
      ...emptyRow(this.name, 'LearnedScale', y.shape.slice(1)),
      floatParams: height + width + channels,
      flops: height * width * channels,
    })
    return y
  }
}

/**
 * The data-driven channel re-scaling of Real-to-Bin: from the real-valued activation before binarisation,
 * GlobalAvgPool → Dense(C_in → C_in/r), ReLU → Dense(→ C_out), sigmoid; no biases, he_normal (larq zoo).
 */
export class Gate {
  readonly reduce: Dense
  readonly expand: Dense

  constructor(
    store: ParamStore,
    readonly name: string,
    readonly inChannels: number,
    readonly outChannels: number,
    reduction: number,
  ) {
    const hidden = Math.max(1, Math.floor(inChannels / reduction))
    this.reduce = new Dense(store, `${name}.reduce`, inChannels, hidden, { bias: false, init: 'he' })
    this.expand = new Dense(store, `${name}.expand`, hidden, outChannels, { bias: false, init: 'he' })
  }

  /** Gate values [N, C_out] in (0, 1). */
  values(realInput: tf.Tensor4D, ctx: ForwardContext): tf.Tensor2D {
    const pooled = tf.mean(realInput, [1, 2]) as tf.Tensor2D
    return tf.sigmoid(this.expand.apply(tf.relu(this.reduce.apply(pooled, ctx, false)), ctx, false))
  }

  /** Scales the conv output per image and channel; returns the scaled output and the gate values. */
  apply(realInput: tf.Tensor4D, convOutput: tf.Tensor4D, ctx: ForwardContext): [tf.Tensor4D, tf.Tensor2D] {
    const gate = this.values(realInput, ctx)
    const [n, , , c] = convOutput.shape
    const scaled = tf.mul(convOutput, tf.reshape(gate, [n, 1, 1, c])) as tf.Tensor4D
    const hidden = this.reduce.units
    traceRow(ctx, {
      ...emptyRow(this.name, 'Gate', scaled.shape.slice(1)),
      floatParams: this.inChannels * hidden + hidden * this.outChannels,
      flops: this.inChannels * hidden + hidden * this.outChannels + convOutput.size / n,
    })
    return [scaled, gate]
  }
}
