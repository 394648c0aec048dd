/**
 * From a trained checkpoint to the tensors of an export, with BN folded wherever that is exact in real
 * arithmetic:
 * - stem conv → BN and real shortcut 1×1 conv → BN become one conv with a bias;
 * - a block's BN before sign becomes a per-channel affine (scale, shift) whose sign is the binary input; the
 *   gate reads mean(scale·x + shift) = scale·mean(x) + shift, so it needs nothing else;
 * - a binary shortcut's weight scale and BN become one per-channel (scale, bias) on the popcount result;
 * - an analytic (mean |w|) weight scale becomes a stored per-channel scale, and folds into the learned
 *   scale's channel factor when there is one.
 * Moving statistics and γ/β disappear; latent weights keep only their sign.
 */
import type { Checkpoint } from '../engine/checkpoint'
import type { ModelBuild } from '../../shared/checkpoint'
import { TRANSFER_POINTS } from '../engine/models'
import { isBinaryActivation } from '../engine/quantizers'
import { DeployError } from './errors'
import type { ExportHeader, ExportTensor } from './format'

export interface ExportMeta {
  runId: string
  stage: string
  classes: string[]
  normalisation: { mean: number[]; std: number[] }
  /** The run's data.storedSize when it trained on crops of a larger store (0 or absent: none). */
  storedSize?: number
}

type Table = Map<string, { shape: number[]; values: Float32Array }>

function table(checkpoint: Checkpoint): Table {
  const out: Table = new Map()
  for (const t of checkpoint.manifest.tensors) {
    if (t.group === 'optimizer') continue
    const count = t.shape.reduce((a, b) => a * b, 1)
    out.set(t.name, { shape: t.shape, values: new Float32Array(checkpoint.data, t.offset * 4, count) })
  }
  return out
}

/** Why a build cannot be exported as a fully binary network, or null when it can. */
export function notFullyBinary(build: ModelBuild): string | null {
  if (build.architecture !== 'binary') return 'it is the real ResNet-18, not the binary architecture'
  if (!isBinaryActivation(build.activation)) return `its activations are ${build.activation}, not sign`
  if (build.weights !== 'sign') return 'its weights are real, not sign'
  return null
}

/** Float32 parameters of a model as trained: weights and BN statistics, the float graph's size. */
export function float32Params(checkpoint: Checkpoint): number {
  return [...table(checkpoint).values()].reduce((sum, t) => sum + t.values.length, 0)
}

export function foldCheckpoint(
  checkpoint: Checkpoint,
  meta: ExportMeta,
): {
  meta: Omit<ExportHeader, 'format' | 'version' | 'bitOrder' | 'binaryParams' | 'realParams' | 'tensors'>
  tensors: ExportTensor[]
} {
  const build = checkpoint.manifest.model
  const why = notFullyBinary(build)
  if (why) {
    throw new DeployError(
      `stage ${checkpoint.manifest.stage} is not fully binary (${why}): export a stage with sign activations and sign weights, e.g. --stage bnn`,
    )
  }
  const t = table(checkpoint)
  const get = (name: string) => {
    const v = t.get(name)
    if (!v) throw new DeployError(`checkpoint of stage ${checkpoint.manifest.stage} has no ${name}`)
    return v
  }
  const out: ExportTensor[] = []
  const real = (name: string, shape: number[], values: Float32Array) =>
    out.push({ name, kind: 'float32', shape, values })
  const eps = build.bnEpsilon
  /** BN as y = scale·x + shift. */
  const bn = (prefix: string) => {
    const gamma = get(`${prefix}.gamma`).values
    const beta = get(`${prefix}.beta`).values
    const mean = get(`${prefix}.moving_mean`).values
    const variance = get(`${prefix}.moving_variance`).values
    const scale = new Float32Array(gamma.length)
    const shift = new Float32Array(gamma.length)
    for (let c = 0; c < gamma.length; c++) {
      scale[c] = gamma[c]! / Math.sqrt(variance[c]! + eps)
      shift[c] = beta[c]! - mean[c]! * scale[c]!
    }
    return { scale, shift }
  }
  /** A real conv followed by BN, as one conv with bias. */
  const convBn = (conv: string, norm: string, name: string) => {
    const kernel = get(`${conv}.kernel`)
    const { scale, shift } = bn(norm)
    const cout = kernel.shape[3]!
    const folded = new Float32Array(kernel.values.length)
    for (let i = 0; i < folded.length; i++) folded[i] = kernel.values[i]! * scale[i % cout]!
    real(`${name}.kernel`, kernel.shape, folded)
    real(`${name}.bias`, [cout], shift)
  }
  /** Per-output-channel weight scale of a binary conv, or null when there is none. */
  const weightScale = (conv: string): Float32Array | null => {
    if (build.weightScale === 'learned') return get(`${conv}.weight_scale`).values.slice()
    if (build.weightScale !== 'mean') return null
    const kernel = get(`${conv}.kernel`)
    const cout = kernel.shape[3]!
    const sums = new Float64Array(cout)
    for (let i = 0; i < kernel.values.length; i++)
      sums[i % cout] = sums[i % cout]! + Math.abs(kernel.values[i]!)
    const per = kernel.values.length / cout
    return Float32Array.from(sums, (s) => s / per)
  }
  const bits = (conv: string, name: string) => {
    const kernel = get(`${conv}.kernel`)
    out.push({ name, kind: 'bits', shape: kernel.shape, signs: kernel.values })
    return kernel.shape
  }

  convBn('stem.conv', 'stem.bn', 'stem')
  for (const point of TRANSFER_POINTS) {
    for (const half of ['a', 'b']) {
      const name = `${point}${half}`
      const { scale, shift } = bn(`${name}.bn`)
      real(`${name}.bn.scale`, [scale.length], scale)
      real(`${name}.bn.shift`, [shift.length], shift)
      const shape = bits(`${name}.conv`, `${name}.conv.bits`)
      const cout = shape[3]!
      const ws = weightScale(`${name}.conv`)
      if (build.scaling === 'gate') {
        const reduce = get(`${name}.gate.reduce.kernel`)
        const expand = get(`${name}.gate.expand.kernel`)
        real(`${name}.gate.reduce`, reduce.shape, reduce.values.slice())
        real(`${name}.gate.expand`, expand.shape, expand.values.slice())
      }
      if (build.scaling === 'learned') {
        const h = get(`${name}.scale.scale_h`)
        const w = get(`${name}.scale.scale_w`)
        const c = get(`${name}.scale.scale_c`).values.slice()
        if (ws) for (let o = 0; o < cout; o++) c[o]! *= ws[o]!
        real(`${name}.scale.h`, [h.values.length], h.values.slice())
        real(`${name}.scale.w`, [w.values.length], w.values.slice())
        real(`${name}.scale.c`, [cout], c)
      } else if (ws) {
        real(`${name}.conv.scale`, [cout], ws)
      }
      const alpha = get(`${name}.prelu.alpha`)
      real(`${name}.prelu.alpha`, [cout], alpha.values.slice())
      if (t.has(`${name}.shortcut.conv.kernel`)) {
        if (build.downsample === 'real') {
          convBn(`${name}.shortcut.conv`, `${name}.shortcut.bn`, `${name}.shortcut`)
        } else {
          bits(`${name}.shortcut.conv`, `${name}.shortcut.bits`)
          const sws = weightScale(`${name}.shortcut.conv`)
          const norm = bn(`${name}.shortcut.bn`)
          const s = norm.scale.map((v, o) => v * (sws ? sws[o]! : 1))
          real(`${name}.shortcut.scale`, [cout], s)
          real(`${name}.shortcut.bias`, [cout], norm.shift)
        }
      }
    }
  }
  const head = get('head.logits.kernel')
  real('head.kernel', head.shape, head.values.slice())
  real('head.bias', [head.shape[1]!], get('head.logits.bias').values.slice())
  return {
    meta: {
      source: {
        runId: meta.runId,
        stage: checkpoint.manifest.stage,
        epochsCompleted: checkpoint.manifest.epochsCompleted,
      },
      model: {
        width: build.width,
        stem: build.stem,
        downsample: build.downsample,
        scaling: build.scaling,
        weightScale: build.weightScale,
        padding: build.padValue === 1 ? 'one' : 'zero',
        inputSize: build.inputSize,
        ...(meta.storedSize ? { storedSize: meta.storedSize } : {}),
        channels: build.channels,
        classes: build.classes,
      },
      classes: meta.classes,
      normalisation: meta.normalisation,
    },
    tensors: out,
  }
}
