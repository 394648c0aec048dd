/**
 * The larq-style model summary: one row per layer, from a batch-1 pass that each layer traces itself in.
 *
 * Conventions (larq's, made explicit):
 * - BOPs are the MACs of convolutions whose inputs and weights are both binary.
 * - FLOPs are the MACs of every other convolution and dense layer (a binary-activation conv with real weights
 *   counts here), plus the gate's two small dense layers and one multiply per output element for the gate's
 *   or the learned scale's rescaling. BN, PReLU, pooling and additions are not counted: at inference BN folds
 *   into the binarisation threshold or the next scale, and the rest is negligible next to the convolutions.
 * - Parameters: BN's moving mean and variance are non-trainable parameters (as Keras and larq count them).
 *   Binary weights are stored at 1 bit, every other parameter at 32 bits.
 * - OPs = BOPs / 64 + FLOPs (the single figure of Bi-Real Net and ReActNet).
 */
import type { ModelBuild } from '../../shared/checkpoint'
import type { ModelSummary, SummaryRow, SummaryTotals } from '../../shared/records'
import { ResNet18, resolveStem } from './models'

export function summaryTotals(rows: SummaryRow[]): SummaryTotals {
  const sum = (key: 'binaryParams' | 'floatParams' | 'nonTrainableParams' | 'bops' | 'flops') =>
    rows.reduce((acc, row) => acc + row[key], 0)
  const binaryParams = sum('binaryParams')
  const floatParams = sum('floatParams')
  const nonTrainableParams = sum('nonTrainableParams')
  const bops = sum('bops')
  const flops = sum('flops')
  const params = binaryParams + floatParams + nonTrainableParams
  const packedBytes = binaryParams / 8 + (floatParams + nonTrainableParams) * 4
  const float32Bytes = params * 4
  return {
    params,
    trainableParams: binaryParams + floatParams,
    nonTrainableParams,
    binaryParams,
    bops,
    flops,
    packedBytes,
    float32Bytes,
    compressionRatio: float32Bytes / packedBytes,
    binarisedMacFraction: bops + flops > 0 ? bops / (bops + flops) : 0,
    ops: bops / 64 + flops,
  }
}

/** Builds the model, traces it and frees it again. */
export function summariseModel(build: ModelBuild, name: string = build.architecture): ModelSummary {
  const model = new ResNet18(build, `summary-${name}`)
  try {
    const layers = model.traceLayers()
    return { model: name, layers, totals: summaryTotals(layers) }
  } finally {
    model.dispose()
  }
}

export interface SummaryOptions {
  model: 'teacher' | 'r2b' | 'baseline'
  /** fp: real weights, tanh (r2b) or identity (baseline) activations; ban: sign activations; bnn: both binary. */
  stage: 'fp' | 'ban' | 'bnn'
  input: number
  channels: 1 | 3
  classes: number
  stem: 'auto' | 'imagenet' | 'cifar'
  downsample: 'real' | 'binary'
  width: number
  binaryPadding?: 'one' | 'zero'
}

export function summaryBuild(o: SummaryOptions): ModelBuild {
  const teacher = o.model === 'teacher'
  const gated = o.model === 'r2b'
  return {
    architecture: teacher ? 'resnet' : 'binary',
    activation: teacher ? 'identity' : o.stage === 'fp' ? (gated ? 'tanh' : 'identity') : 'sign',
    weights: !teacher && o.stage === 'bnn' ? 'sign' : 'real',
    scaling: teacher ? 'none' : gated ? 'gate' : 'learned',
    width: o.width,
    stem: resolveStem(o.stem, o.input),
    downsample: o.downsample,
    padValue: o.binaryPadding === 'zero' ? 0 : 1,
    steClip: 1,
    gateReduction: 8,
    weightScale: 'none',
    bnMomentum: 0.99,
    bnEpsilon: 1e-3,
    preluInit: 0,
    inputSize: o.input,
    channels: o.channels,
    classes: o.classes,
    seed: 0,
  }
}

function count(n: number): string {
  return Math.round(n).toLocaleString('en-US')
}

function bytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / (1024 * 1024)).toFixed(2)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(2)} KiB`
  return `${n.toFixed(0)} B`
}

/** A plain-text table in the spirit of `larq.models.summary`. */
export function formatSummary(summary: ModelSummary): string {
  const header = [
    'Layer',
    'Kind',
    'Input prec.',
    'Output shape',
    '1-bit params',
    '32-bit params',
    'Memory',
    'BOPs',
    'FLOPs',
  ]
  const rows = summary.layers.map((r) => [
    r.name,
    r.kind,
    r.inputPrecision === 1 ? '1' : '32',
    `(${r.outputShape.join(', ')})`,
    r.binaryParams ? count(r.binaryParams) : '-',
    r.floatParams + r.nonTrainableParams ? count(r.floatParams + r.nonTrainableParams) : '-',
    r.memoryBytes ? bytes(r.memoryBytes) : '-',
    r.bops ? count(r.bops) : '-',
    r.flops ? count(r.flops) : '-',
  ])
  const t = summary.totals
  rows.push([
    'Total',
    '',
    '',
    '',
    count(t.binaryParams),
    count(t.params - t.binaryParams),
    bytes(t.packedBytes),
    count(t.bops),
    count(t.flops),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) =>
    cells.map((c, i) => (i < 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2))
  return [
    `${summary.model} summary`,
    rule,
    line(header),
    rule,
    ...rows.slice(0, -1).map(line),
    rule,
    line(rows[rows.length - 1]!),
    rule,
    `Total params                ${count(t.params)}`,
    `Trainable params            ${count(t.trainableParams)}`,
    `Non-trainable params        ${count(t.nonTrainableParams)}`,
    `Binary params               ${count(t.binaryParams)}`,
    `BOPs (binary MACs)          ${count(t.bops)}`,
    `FLOPs (real MACs + scaling) ${count(t.flops)}`,
    `OPs (BOPs/64 + FLOPs)       ${count(t.ops)}`,
    `Memory, packed              ${bytes(t.packedBytes)}`,
    `Memory, float-32 equivalent ${bytes(t.float32Bytes)}`,
    `Compression ratio           ${t.compressionRatio.toFixed(2)}`,
    `MACs binarised              ${(100 * t.binarisedMacFraction).toFixed(2)} %`,
  ].join('\n')
}
