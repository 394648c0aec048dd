/**
 * Inference from an export: the binary convolutions run on bit-packed kernels (WGSL on WebGPU, WebAssembly
 * SIMD on the CPU, or the plain JavaScript reference), the real layers (stem, gate, real shortcut, pooling,
 * classifier) through tfjs on whatever backend is active.
 *
 * Each half block is one kernel call after its gate: sign-and-pack of scale·x + shift, then XNOR-popcount
 * conv with the channel scale (gate × weight scale), PReLU and the shortcut added in the same pass.
 */
import * as tf from '@tensorflow/tfjs'
import { stageWidths, TRANSFER_POINTS } from '../engine/models'
import { binaryConvLayer, type BinaryConvLayer } from './binary-conv'
import { DeployError } from './errors'
import type { DecodedExport, DecodedTensor, ExportHeader } from './format'

/** A constant as a typed array (CPU kernels) and as a tensor (tfjs and GPU kernels). */
export interface Param {
  array: Float32Array
  tensor: tf.Tensor
}

export interface KernelEpilogue {
  /** [cout] or [N, cout] */
  channelScale: tf.Tensor
  spatial: tf.Tensor2D | null
  alpha: Param | null
  bias: Param | null
  residual: tf.Tensor4D | null
}

/** The bit-packed half of the engine. `conv` consumes nothing it is given; the caller disposes. */
export interface BinaryKernels {
  readonly name: 'webgpu' | 'wasm' | 'js'
  /** How this build of the kernels works, where it has a choice (the wasm popcount). */
  readonly detail?: string
  prepare(layer: BinaryConvLayer): unknown
  conv(
    x: tf.Tensor4D,
    affine: { scale: Param; shift: Param } | null,
    layer: BinaryConvLayer,
    prepared: unknown,
    epilogue: KernelEpilogue,
  ): tf.Tensor4D
  dispose(): void
}

interface BinaryConvUnit {
  layer: BinaryConvLayer
  prepared: unknown
}

interface HalfBlock {
  name: string
  scale: Param
  shift: Param
  conv: BinaryConvUnit
  convScale: Param | null
  gate: { reduce: tf.Tensor2D; expand: tf.Tensor2D } | null
  learned: { spatial: tf.Tensor2D; channel: Param } | null
  alpha: Param
  shortcut:
    | null
    | { kind: 'real'; kernel: tf.Tensor4D; bias: tf.Tensor1D }
    | { kind: 'binary'; conv: BinaryConvUnit; scale: Param; bias: Param }
}

export class PackedModel {
  private readonly tensors: tf.Tensor[] = []
  private readonly stem: { kernel: tf.Tensor4D; bias: tf.Tensor1D; stride: number }
  private readonly blocks: HalfBlock[] = []
  private readonly head: { kernel: tf.Tensor2D; bias: tf.Tensor1D }
  readonly header: ExportHeader

  constructor(
    decoded: DecodedExport,
    readonly kernels: BinaryKernels,
  ) {
    const { header, tensors } = decoded
    this.header = header
    const m = header.model
    const padOne = m.padding === 'one'
    const entry = (name: string): DecodedTensor => {
      const t = tensors.get(name)
      if (!t) throw new DeployError(`the export has no tensor ${name}`)
      return t
    }
    const floats = (name: string) => {
      const t = entry(name)
      if (t.kind !== 'float32') throw new DeployError(`${name} should be float32`)
      return t
    }
    const tensor = <T extends tf.Tensor>(name: string): T => {
      const t = floats(name)
      const out = tf.tensor(t.values, t.shape, 'float32') as T
      this.tensors.push(out)
      return out
    }
    const param = (name: string): Param => ({ array: floats(name).values, tensor: tensor(name) })
    const optional = (name: string): Param | null => (tensors.has(name) ? param(name) : null)
    const binary = (name: string, stride: number): BinaryConvUnit => {
      const t = entry(name)
      if (t.kind !== 'bits') throw new DeployError(`${name} should be binary`)
      const layer = binaryConvLayer(t.bits, t.shape, stride, padOne)
      return { layer, prepared: kernels.prepare(layer) }
    }

    this.stem = {
      kernel: tensor('stem.kernel'),
      bias: tensor('stem.bias'),
      stride: m.stem === 'imagenet' ? 2 : 1,
    }
    const widths = stageWidths(m.width)
    TRANSFER_POINTS.forEach((point, i) => {
      const strides = i >= 2 && i % 2 === 0 ? 2 : 1
      for (const half of ['a', 'b']) {
        const name = `${point}${half}`
        const stride = half === 'a' ? strides : 1
        let shortcut: HalfBlock['shortcut'] = null
        if (tensors.has(`${name}.shortcut.kernel`)) {
          shortcut = {
            kind: 'real',
            kernel: tensor(`${name}.shortcut.kernel`),
            bias: tensor(`${name}.shortcut.bias`),
          }
        } else if (tensors.has(`${name}.shortcut.bits`)) {
          shortcut = {
            kind: 'binary',
            conv: binary(`${name}.shortcut.bits`, 1),
            scale: param(`${name}.shortcut.scale`),
            bias: param(`${name}.shortcut.bias`),
          }
        }
        const learned =
          m.scaling === 'learned'
            ? {
                spatial: tf.outerProduct(
                  floats(`${name}.scale.h`).values,
                  floats(`${name}.scale.w`).values,
                ) as tf.Tensor2D,
                channel: param(`${name}.scale.c`),
              }
            : null
        if (learned) this.tensors.push(learned.spatial)
        this.blocks.push({
          name,
          scale: param(`${name}.bn.scale`),
          shift: param(`${name}.bn.shift`),
          conv: binary(`${name}.conv.bits`, stride),
          convScale: optional(`${name}.conv.scale`),
          gate:
            m.scaling === 'gate'
              ? { reduce: tensor(`${name}.gate.reduce`), expand: tensor(`${name}.gate.expand`) }
              : null,
          learned,
          alpha: param(`${name}.prelu.alpha`),
          shortcut,
        })
      }
    })
    if (widths[3] !== (entry('head.kernel').shape[0] ?? 0)) {
      throw new DeployError(`the export's classifier does not match width ${m.width}`)
    }
    this.head = { kernel: tensor('head.kernel'), bias: tensor('head.bias') }
  }

  get inputShape(): [number, number, number] {
    const m = this.header.model
    return [m.inputSize, m.inputSize, m.channels]
  }

  /** Logits [N, classes] of normalised images [N, H, W, C]. */
  predict(images: tf.Tensor4D): tf.Tensor2D {
    const [, h, w, c] = images.shape
    const [eh, ew, ec] = this.inputShape
    if (h !== eh || w !== ew || c !== ec) {
      throw new DeployError(`the model takes ${eh}×${ew}×${ec} images, got ${h}×${w}×${c}`)
    }
    return tf.tidy(() => {
      let x = tf.relu(
        tf.add(tf.conv2d(images, this.stem.kernel, this.stem.stride, 'same'), this.stem.bias),
      ) as tf.Tensor4D
      if (this.header.model.stem === 'imagenet') x = tf.maxPool(x, 3, 2, 'same')
      for (const block of this.blocks) x = this.half(block, x)
      const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D
      return tf.add(tf.matMul(pooled, this.head.kernel), this.head.bias) as tf.Tensor2D
    })
  }

  private half(block: HalfBlock, x: tf.Tensor4D): tf.Tensor4D {
    const cout = block.conv.layer.cout
    let channelScale: tf.Tensor
    let spatial: tf.Tensor2D | null = null
    if (block.gate) {
      const normalisedMean = tf.add(tf.mul(tf.mean(x, [1, 2]), block.scale.tensor), block.shift.tensor)
      const hidden = tf.relu(tf.matMul(normalisedMean as tf.Tensor2D, block.gate.reduce))
      let gate = tf.sigmoid(tf.matMul(hidden, block.gate.expand))
      if (block.convScale) gate = tf.mul(gate, block.convScale.tensor)
      channelScale = gate
    } else if (block.learned) {
      channelScale = block.learned.channel.tensor
      spatial = block.learned.spatial
    } else {
      channelScale = block.convScale ? block.convScale.tensor : tf.ones([cout])
    }
    let residual: tf.Tensor4D = x
    const sc = block.shortcut
    if (sc?.kind === 'real') {
      residual = tf.add(tf.conv2d(tf.avgPool(x, 2, 2, 'same'), sc.kernel, 1, 'valid'), sc.bias)
    } else if (sc?.kind === 'binary') {
      const normalised = tf.add(tf.mul(x, block.scale.tensor), block.shift.tensor) as tf.Tensor4D
      residual = this.kernels.conv(
        tf.avgPool(normalised, 2, 2, 'same'),
        null,
        sc.conv.layer,
        sc.conv.prepared,
        {
          channelScale: sc.scale.tensor,
          spatial: null,
          alpha: null,
          bias: sc.bias,
          residual: null,
        },
      )
    }
    return this.kernels.conv(
      x,
      { scale: block.scale, shift: block.shift },
      block.conv.layer,
      block.conv.prepared,
      {
        channelScale,
        spatial,
        alpha: block.alpha,
        bias: null,
        residual,
      },
    )
  }

  dispose(): void {
    tf.dispose(this.tensors)
    this.tensors.length = 0
  }
}
