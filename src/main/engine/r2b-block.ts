/**
 * The binary block of Fig. 1 (Martinez et al., 2020), one half block per 3×3 convolution:
 *
 *     x ──► BN ──► q(·) ──► conv3×3 ──► ⊙ scale ──► PReLU ──► (+) ──► out
 *     │      └──────────► gate G(BN output) ──┘                 ▲
 *     └──────────────────── shortcut ───────────────────────────┘
 *
 * The gate reads the real-valued BN output, before the quantizer. A shape change (stride 2, channels ×2) puts
 * AvgPool 2×2/2 → 1×1 conv (real or binary) → BN on the shortcut; a binary one reads the BN output too.
 */
import * as tf from '@tensorflow/tfjs'
import type { ActivationQuantizer } from '../../shared/run-config'
import {
  BatchNorm,
  Gate,
  LearnedScale,
  PReLU,
  QuantConv2d,
  emptyRow,
  traceRow,
  type ForwardContext,
  type ParamStore,
} from './layers'
import type { WeightScale } from './quantizers'

export interface BinaryBlockOptions {
  activation: ActivationQuantizer
  weights: 'real' | 'sign'
  scaling: 'gate' | 'learned' | 'none'
  downsample: 'real' | 'binary'
  weightScale: WeightScale
  padValue: 0 | 1
  steClip: number
  gateReduction: number
  bnMomentum: number
  bnEpsilon: number
  preluInit: number
}

/** AvgPool 2×2/2 → 1×1 conv → BN; shared by the binary and the real blocks. */
export class DownsampleShortcut {
  readonly conv: QuantConv2d
  readonly bn: BatchNorm

  constructor(
    store: ParamStore,
    readonly name: string,
    inChannels: number,
    outChannels: number,
    quantizers: {
      input: ActivationQuantizer
      kernel: 'real' | 'sign'
      weightScale: WeightScale
      padValue: 0 | 1
    },
    bn: { momentum: number; epsilon: number },
    steClip: number,
  ) {
    this.conv = new QuantConv2d(store, `${name}.conv`, {
      inChannels,
      filters: outChannels,
      kernelSize: 1,
      strides: 1,
      inputQuantizer: quantizers.input,
      kernelQuantizer: quantizers.kernel,
      weightScale: quantizers.weightScale,
      padValue: quantizers.padValue,
      steClip,
    })
    this.bn = new BatchNorm(store, `${name}.bn`, outChannels, bn.momentum, bn.epsilon)
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const pooled = tf.avgPool(x, 2, 2, 'same')
    traceRow(ctx, emptyRow(`${this.name}.pool`, 'AveragePooling2D', pooled.shape.slice(1)))
    return this.bn.apply(this.conv.apply(pooled, ctx), ctx)
  }
}

export class HalfBinaryBlock {
  readonly bn: BatchNorm
  readonly conv: QuantConv2d
  readonly gate: Gate | null
  readonly scale: LearnedScale | null
  readonly prelu: PReLU
  readonly shortcut: DownsampleShortcut | null
  private readonly binaryShortcut: boolean

  constructor(
    store: ParamStore,
    readonly name: string,
    inChannels: number,
    outChannels: number,
    strides: number,
    outputSize: number,
    o: BinaryBlockOptions,
  ) {
    const kernel = o.weights === 'sign' ? 'sign' : 'real'
    this.bn = new BatchNorm(store, `${name}.bn`, inChannels, o.bnMomentum, o.bnEpsilon)
    this.conv = new QuantConv2d(store, `${name}.conv`, {
      inChannels,
      filters: outChannels,
      kernelSize: 3,
      strides,
      inputQuantizer: o.activation,
      kernelQuantizer: kernel,
      weightScale: o.weightScale,
      padValue: o.padValue,
      steClip: o.steClip,
    })
    this.gate =
      o.scaling === 'gate' ? new Gate(store, `${name}.gate`, inChannels, outChannels, o.gateReduction) : null
    this.scale =
      o.scaling === 'learned'
        ? new LearnedScale(store, `${name}.scale`, outputSize, outputSize, outChannels)
        : null
    this.prelu = new PReLU(store, `${name}.prelu`, outChannels, o.preluInit)
    const binaryShortcut = o.downsample === 'binary'
    this.binaryShortcut = binaryShortcut
    this.shortcut =
      strides > 1 || inChannels !== outChannels
        ? new DownsampleShortcut(
            store,
            `${name}.shortcut`,
            inChannels,
            outChannels,
            {
              input: binaryShortcut ? o.activation : 'identity',
              kernel: binaryShortcut ? kernel : 'real',
              weightScale: o.weightScale,
              padValue: o.padValue,
            },
            { momentum: o.bnMomentum, epsilon: o.bnEpsilon },
            o.steClip,
          )
        : null
  }

  /** Returns the block output and, when gated, the gate values [N, C_out]. */
  apply(x: tf.Tensor4D, ctx: ForwardContext): [tf.Tensor4D, tf.Tensor2D | null] {
    const normalised = this.bn.apply(x, ctx)
    // A binary downsample binarises the block's BN output (its learned threshold), as the main branch does:
    // the raw block input is mostly non-negative, and its sign would carry almost nothing.
    const shortcutInput = this.binaryShortcut ? normalised : x
    const shortcut = this.shortcut ? this.shortcut.apply(shortcutInput, ctx) : x
    const convOutput = this.conv.apply(normalised, ctx)
    let scaled = convOutput
    let gate: tf.Tensor2D | null = null
    if (this.gate) [scaled, gate] = this.gate.apply(normalised, convOutput, ctx)
    else if (this.scale) scaled = this.scale.apply(convOutput, ctx)
    return [tf.add(this.prelu.apply(scaled, ctx), shortcut), gate]
  }
}

/** Two half blocks; the second keeps the shape. Its output is an attention transfer point. */
export class BinaryBlock {
  readonly a: HalfBinaryBlock
  readonly b: HalfBinaryBlock

  constructor(
    store: ParamStore,
    readonly name: string,
    inChannels: number,
    outChannels: number,
    strides: number,
    outputSize: number,
    options: BinaryBlockOptions,
  ) {
    this.a = new HalfBinaryBlock(store, `${name}a`, inChannels, outChannels, strides, outputSize, options)
    this.b = new HalfBinaryBlock(store, `${name}b`, outChannels, outChannels, 1, outputSize, options)
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): { output: tf.Tensor4D; gates: [string, tf.Tensor2D | null][] } {
    const [mid, gateA] = this.a.apply(x, ctx)
    const [output, gateB] = this.b.apply(mid, ctx)
    return {
      output,
      gates: [
        [this.a.name, gateA],
        [this.b.name, gateB],
      ],
    }
  }
}
