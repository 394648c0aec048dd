/**
 * ResNet-18 as the method uses it, configured rather than copied: the real teacher (basic blocks) and the
 * binary network of Fig. 1, with the same stem, the same 8 blocks (the attention transfer points) and the same
 * head, so a teacher and a student can be matched point by point.
 */
import * as tf from '@tensorflow/tfjs'
import type { ModelBuild } from '../../shared/checkpoint'
import type { RunConfig, StudentSpec } from '../../shared/run-config'
import type { SummaryRow } from '../../shared/records'
import {
  BatchNorm,
  Dense,
  ParamStore,
  emptyRow,
  QuantConv2d,
  forwardContext,
  traceRow,
  type ForwardContext,
} from './layers'
import { BinaryBlock, DownsampleShortcut, type BinaryBlockOptions } from './r2b-block'

export const TRANSFER_POINTS = [
  'block_1',
  'block_2',
  'block_3',
  'block_4',
  'block_5',
  'block_6',
  'block_7',
  'block_8',
]

export function resolveStem(stem: 'auto' | 'imagenet' | 'cifar', inputSize: number): 'imagenet' | 'cifar' {
  if (stem !== 'auto') return stem
  return inputSize >= 64 ? 'imagenet' : 'cifar'
}

export function modelBuild(config: RunConfig, student: StudentSpec, seed = config.seed): ModelBuild {
  const real = student.architecture === 'resnet'
  return {
    architecture: student.architecture,
    activation: real ? 'identity' : student.activation,
    weights: real ? 'real' : student.weights,
    scaling: real ? 'none' : student.scaling,
    width: config.model.width,
    stem: resolveStem(config.model.stem, config.data.inputSize),
    downsample: config.model.downsample,
    padValue: config.model.binaryPadding === 'one' ? 1 : 0,
    steClip: config.model.steClip,
    gateReduction: config.model.gateReduction,
    weightScale: config.model.weightScale,
    bnMomentum: config.model.bnMomentum,
    bnEpsilon: config.model.bnEpsilon,
    preluInit: config.model.preluInit,
    inputSize: config.data.inputSize,
    channels: config.data.channels,
    classes: config.data.classes,
    seed,
  }
}

export interface ForwardResult {
  logits: tf.Tensor2D
  /** Outputs of the 8 blocks, in TRANSFER_POINTS order. */
  points: tf.Tensor4D[]
  /** Gate values per gated half block, [N, C_out]. */
  gates: { block: string; values: tf.Tensor2D }[]
}

/** The real ResNet basic block: conv → BN → ReLU → conv → BN, + shortcut, ReLU. */
class RealBlock {
  readonly conv1: QuantConv2d
  readonly bn1: BatchNorm
  readonly conv2: QuantConv2d
  readonly bn2: BatchNorm
  readonly shortcut: DownsampleShortcut | null

  constructor(
    store: ParamStore,
    readonly name: string,
    inChannels: number,
    outChannels: number,
    strides: number,
    b: ModelBuild,
  ) {
    const conv = (suffix: string, cin: number, s: number) =>
      new QuantConv2d(store, `${name}${suffix}.conv`, {
        inChannels: cin,
        filters: outChannels,
        kernelSize: 3,
        strides: s,
        inputQuantizer: 'identity',
        kernelQuantizer: 'real',
        weightScale: 'none',
        padValue: 0,
        steClip: b.steClip,
      })
    this.conv1 = conv('a', inChannels, strides)
    this.bn1 = new BatchNorm(store, `${name}a.bn`, outChannels, b.bnMomentum, b.bnEpsilon)
    this.conv2 = conv('b', outChannels, 1)
    this.bn2 = new BatchNorm(store, `${name}b.bn`, outChannels, b.bnMomentum, b.bnEpsilon)
    this.shortcut =
      strides > 1 || inChannels !== outChannels
        ? new DownsampleShortcut(
            store,
            `${name}.shortcut`,
            inChannels,
            outChannels,
            { input: 'identity', kernel: 'real', weightScale: 'none', padValue: 0 },
            { momentum: b.bnMomentum, epsilon: b.bnEpsilon },
            b.steClip,
          )
        : null
  }

  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const shortcut = this.shortcut ? this.shortcut.apply(x, ctx) : x
    const h = tf.relu(this.bn1.apply(this.conv1.apply(x, ctx), ctx))
    return tf.relu(tf.add<tf.Tensor4D>(this.bn2.apply(this.conv2.apply(h, ctx), ctx), shortcut))
  }
}

export function stageWidths(width: number): number[] {
  return [64, 128, 256, 512].map((c) => Math.max(1, Math.round(c * width)))
}

export class ResNet18 {
  readonly store: ParamStore
  private readonly stemConv: QuantConv2d
  private readonly stemBn: BatchNorm
  private readonly blocks: (BinaryBlock | RealBlock)[] = []
  private readonly head: Dense

  constructor(
    readonly build: ModelBuild,
    label: string = build.architecture,
  ) {
    const b = build
    this.store = new ParamStore(label, b.seed)
    const widths = stageWidths(b.width)
    const first = widths[0] as number
    const imagenet = b.stem === 'imagenet'
    this.stemConv = new QuantConv2d(this.store, 'stem.conv', {
      inChannels: b.channels,
      filters: first,
      kernelSize: imagenet ? 7 : 3,
      strides: imagenet ? 2 : 1,
      inputQuantizer: 'identity',
      kernelQuantizer: 'real',
      weightScale: 'none',
      padValue: 0,
      steClip: b.steClip,
    })
    this.stemBn = new BatchNorm(this.store, 'stem.bn', first, b.bnMomentum, b.bnEpsilon)
    let size = imagenet ? Math.ceil(Math.ceil(b.inputSize / 2) / 2) : b.inputSize
    const options: BinaryBlockOptions = {
      activation: b.activation,
      weights: b.weights,
      scaling: b.scaling,
      downsample: b.downsample,
      weightScale: b.weightScale,
      padValue: b.padValue,
      steClip: b.steClip,
      gateReduction: b.gateReduction,
      bnMomentum: b.bnMomentum,
      bnEpsilon: b.bnEpsilon,
      preluInit: b.preluInit,
    }
    let inChannels = first
    TRANSFER_POINTS.forEach((name, i) => {
      const outChannels = widths[Math.floor(i / 2)] as number
      const strides = i >= 2 && i % 2 === 0 ? 2 : 1
      size = Math.ceil(size / strides)
      this.blocks.push(
        b.architecture === 'binary'
          ? new BinaryBlock(this.store, name, inChannels, outChannels, strides, size, options)
          : new RealBlock(this.store, name, inChannels, outChannels, strides, b),
      )
      inChannels = outChannels
    })
    this.head = new Dense(this.store, 'head.logits', inChannels, b.classes, { bias: true, init: 'glorot' })
  }

  forward(images: tf.Tensor4D, ctx: ForwardContext): ForwardResult {
    let x: tf.Tensor4D = tf.relu(this.stemBn.apply(this.stemConv.apply(images, ctx), ctx))
    if (this.build.stem === 'imagenet') {
      x = tf.maxPool(x, 3, 2, 'same')
      traceRow(ctx, emptyRow('stem.pool', 'MaxPooling2D', x.shape.slice(1)))
    }
    const points: tf.Tensor4D[] = []
    const gates: ForwardResult['gates'] = []
    for (const block of this.blocks) {
      if (block instanceof BinaryBlock) {
        const out = block.apply(x, ctx)
        x = out.output
        for (const [name, values] of out.gates) if (values) gates.push({ block: name, values })
      } else {
        x = block.apply(x, ctx)
      }
      points.push(x)
    }
    const pooled = tf.mean(x, [1, 2]) as tf.Tensor2D
    return { logits: this.head.apply(pooled, ctx), points, gates }
  }

  /** Logits only, in inference mode. */
  predict(images: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.forward(images, forwardContext(false)).logits)
  }

  trainableVariables(): tf.Variable[] {
    return [...this.store.weights.values()]
  }

  /** Convolutions of the binary architecture (the 3×3 convs and binary shortcuts), for sign-flip statistics. */
  binaryLayerKernels(): { layer: string; kernel: tf.Variable }[] {
    if (this.build.architecture !== 'binary') return []
    const out: { layer: string; kernel: tf.Variable }[] = []
    for (const block of this.blocks as BinaryBlock[]) {
      for (const half of [block.a, block.b]) {
        out.push({ layer: half.conv.name, kernel: half.conv.kernel })
        if (half.shortcut && this.build.downsample === 'binary') {
          out.push({ layer: half.shortcut.conv.name, kernel: half.shortcut.conv.kernel })
        }
      }
    }
    return out
  }

  /** One cost row per layer, from a batch-1 inference pass. */
  traceLayers(): SummaryRow[] {
    const rows: SummaryRow[] = []
    tf.tidy(() => {
      const input = tf.zeros([
        1,
        this.build.inputSize,
        this.build.inputSize,
        this.build.channels,
      ]) as tf.Tensor4D
      this.forward(input, forwardContext(false, { trace: (row) => rows.push(row) }))
    })
    return rows
  }

  dispose(): void {
    this.store.dispose()
  }
}
