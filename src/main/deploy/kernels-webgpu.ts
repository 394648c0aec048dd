/**
 * The binary kernels in WGSL, run as programs of tfjs's own WebGPU backend: they share its device, command
 * encoder and buffer pool, so they interleave with the real layers' tfjs ops without any copy or flush.
 *
 * - sign-and-pack: one invocation per (pixel, 32-channel word): bit = scale·x + shift < 0;
 * - XNOR-popcount conv: one invocation per (2 adjacent output pixels, 4 output channels), weights laid out
 *   [tap][word][cout] so the 4 channels' words are one vec4 load; `countOneBits` on the xor, and the epilogue
 *   (channel/gate scale, spatial scale, PReLU, bias, residual) fused before the single store.
 * Out-of-image taps read all-zero bits (+1 inputs) with +1 padding and are skipped with 0 padding.
 */
import * as tf from '@tensorflow/tfjs'
import { convGeometry, type BinaryConvLayer } from './binary-conv'
import type { BinaryKernels, KernelEpilogue, Param } from './packed-model'

interface TensorInfoLike {
  dataId: object
  shape: number[]
  dtype: tf.DataType
}

interface WebGpuProgram {
  variableNames: string[]
  variableComponents?: number[]
  uniforms: string
  outputShape: number[]
  shaderKey: string
  dispatchLayout: { x: number[] }
  dispatch: [number, number, number]
  workgroupSize: [number, number, number]
  getUserCode(): string
}

interface WebGpuBackendLike {
  runWebGPUProgram(
    program: WebGpuProgram,
    inputs: TensorInfoLike[],
    outputDtype: tf.DataType,
    uniforms: { type: 'int32' | 'float32'; data: number[] }[],
  ): TensorInfoLike
}

const WORKGROUP = 64
const CHANNELS_PER_INVOCATION = 4
/**
 * Horizontally adjacent output pixels per invocation: each weight vec4 loaded serves both, and the index
 * arithmetic is shared. Two gave 1.3–1.4× on every ResNet-18 shape over one on lavapipe, as four did, and keep
 * twice as many invocations as four for the 7×7 layers.
 */
const PIXELS_PER_INVOCATION = 2

function backend(): WebGpuBackendLike {
  if (tf.getBackend() !== 'webgpu') throw new Error('the WebGPU binary kernels need the tfjs webgpu backend')
  return tf.backend() as unknown as WebGpuBackendLike
}

function run(
  program: WebGpuProgram,
  inputs: tf.Tensor[],
  dtype: tf.DataType,
  uniforms: number[],
  threads: number,
): tf.Tensor {
  program.dispatch = [Math.ceil(threads / WORKGROUP), 1, 1]
  const info = backend().runWebGPUProgram(
    program,
    inputs,
    dtype,
    uniforms.map((v) => ({ type: 'int32' as const, data: [v] })),
  )
  return tf.engine().makeTensorFromTensorInfo(info as never)
}

function packProgram(pixels: number, channels: number, words: number, affine: boolean): WebGpuProgram {
  return {
    variableNames: affine ? ['xs', 'bnScale', 'bnShift'] : ['xs'],
    uniforms: 'channels: i32, words: i32, threads: i32,',
    outputShape: [pixels * words],
    shaderKey: `r2b_sign_pack_${affine}`,
    dispatchLayout: { x: [0] },
    dispatch: [1, 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    getUserCode: () => `
      fn main(index : i32) {
        if (index >= uniforms.threads) { return; }
        let pixel = index / uniforms.words;
        let c0 = (index % uniforms.words) * 32;
        let cEnd = min(c0 + 32, uniforms.channels);
        let base = pixel * uniforms.channels;
        var bits = 0u;
        for (var c = c0; c < cEnd; c = c + 1) {
          let v = ${affine ? 'xs[base + c] * bnScale[c] + bnShift[c]' : 'xs[base + c]'};
          if (v < 0.0) { bits = bits | (1u << u32(c - c0)); }
        }
        result[index] = bitcast<i32>(bits);
      }`,
  }
}

interface ConvFlags {
  k: number
  padOne: boolean
  perImage: boolean
  spatial: boolean
  alpha: boolean
  bias: boolean
  residual: boolean
}

function convProgram(outputShape: number[], f: ConvFlags): WebGpuProgram {
  const names = ['bits', 'weights', 'channelScale']
  if (f.spatial) names.push('spatialScale')
  if (f.alpha) names.push('alpha')
  if (f.bias) names.push('bias')
  if (f.residual) names.push('residual')
  const key = Object.entries(f)
    .map(([k, v]) => `${k}${Number(v)}`)
    .join('_')
  const scaleIndex = f.perImage ? 'n * uniforms.cout + o' : 'o'
  return {
    variableNames: names,
    variableComponents: names.map((name) => (name === 'weights' ? 4 : 1)),
    uniforms:
      'h: i32, w: i32, words: i32, cin: i32, cout: i32, coutPadded: i32, oh: i32, ow: i32, owGroups: i32, stride: i32, padTop: i32, padLeft: i32, threads: i32,',
    outputShape,
    shaderKey: `r2b_xnor_conv_${key}_p${PIXELS_PER_INVOCATION}`,
    dispatchLayout: { x: [0] },
    dispatch: [1, 1, 1],
    workgroupSize: [WORKGROUP, 1, 1],
    getUserCode: () => {
      const pixels = Array.from({ length: PIXELS_PER_INVOCATION }, (_, p) => p)
      const each = (code: (p: number) => string) => pixels.map(code).join('\n')
      // An outside tap is an all-zero word (+1 inputs) with +1 padding, and is left out with 0 padding.
      const accumulate = (p: number) =>
        f.padOne
          ? `var xv${p} = 0u;
            if (inside${p}) { xv${p} = bitcast<u32>(bits[xBase${p} + j]); }
            mismatches${p} += countOneBits(vec4<u32>(xv${p}) ^ wv);`
          : `if (inside${p}) { mismatches${p} += countOneBits(vec4<u32>(bitcast<u32>(bits[xBase${p} + j])) ^ wv); }`
      return `
      fn main(index : i32) {
        if (index >= uniforms.threads) { return; }
        let groups = uniforms.coutPadded / 4;
        let group = index % groups;
        var rest = index / groups;
        let ox0 = (rest % uniforms.owGroups) * ${PIXELS_PER_INVOCATION};
        rest = rest / uniforms.owGroups;
        let oy = rest % uniforms.oh;
        let n = rest / uniforms.oh;
        ${each((p) => `var mismatches${p} = vec4<u32>(0u); var used${p} = 0;`)}
        for (var t = 0; t < ${f.k * f.k}; t = t + 1) {
          let iy = oy * uniforms.stride - uniforms.padTop + t / ${f.k};
          let rowInside = iy >= 0 && iy < uniforms.h;
          let kx = t % ${f.k};
          let wBase = t * uniforms.words * groups + group;
          ${each(
            (p) => `
          let ix${p} = (ox0 + ${p}) * uniforms.stride - uniforms.padLeft + kx;
          let inside${p} = rowInside && ix${p} >= 0 && ix${p} < uniforms.w;
          let xBase${p} = ((n * uniforms.h + iy) * uniforms.w + ix${p}) * uniforms.words;
          if (inside${p}) { used${p} = used${p} + 1; }`,
          )}
          for (var j = 0; j < uniforms.words; j = j + 1) {
            let wv = bitcast<vec4<u32>>(weights[wBase + j * groups]);
            ${each(accumulate)}
          }
        }
        ${each(
          (p) => `
        if (ox0 + ${p} < uniforms.ow) {
          store(n, oy, ox0 + ${p}, group, ${f.padOne ? f.k * f.k : `used${p}`} * uniforms.cin, mismatches${p});
        }`,
        )}
      }

      // d = (taps used)·cin − 2·mismatches, then the epilogue, for the pixel's 4 channels of this group
      fn store(n : i32, oy : i32, ox : i32, group : i32, full : i32, mismatches : vec4<u32>) {
        let outBase = ((n * uniforms.oh + oy) * uniforms.ow + ox) * uniforms.cout;
        for (var q = 0; q < 4; q = q + 1) {
          let o = group * 4 + q;
          if (o >= uniforms.cout) { break; }
          let d = full - 2 * i32(mismatches[q]);
          var y = f32(d) * channelScale[${scaleIndex}];
          ${f.spatial ? 'y = y * spatialScale[oy * uniforms.ow + ox];' : ''}
          ${f.alpha ? 'if (y < 0.0) { y = y * alpha[o]; }' : ''}
          ${f.bias ? 'y = y + bias[o];' : ''}
          ${f.residual ? 'y = y + residual[outBase + o];' : ''}
          result[outBase + o] = y;
        }
      }`
    },
  }
}

interface Prepared {
  /** int32 [taps · words · coutPadded] (as vec4 groups of 4 channels). */
  weights: tf.Tensor
  coutPadded: number
}

/** Re-lays [cout][tap][word] as [tap][word][coutPadded] so 4 consecutive channels are adjacent. */
function gpuWeights(layer: BinaryConvLayer): Prepared {
  const taps = layer.k * layer.k
  const coutPadded = Math.ceil(layer.cout / CHANNELS_PER_INVOCATION) * CHANNELS_PER_INVOCATION
  const out = new Int32Array(taps * layer.words * coutPadded)
  for (let o = 0; o < layer.cout; o++)
    for (let t = 0; t < taps; t++)
      for (let j = 0; j < layer.words; j++)
        out[(t * layer.words + j) * coutPadded + o] = layer.weights[(o * taps + t) * layer.words + j]! | 0
  return { weights: tf.tensor1d(out, 'int32'), coutPadded }
}

/** Sign-and-pack on the GPU: int32 bit words [N·H·W·words]. */
export function packOnGpu(x: tf.Tensor4D, affine: { scale: Param; shift: Param } | null): tf.Tensor {
  const [n, h, w, c] = x.shape
  const words = Math.ceil(c / 32)
  const pixels = n * h * w
  const inputs = affine ? [x, affine.scale.tensor, affine.shift.tensor] : [x]
  return run(
    packProgram(pixels, c, words, affine !== null),
    inputs,
    'int32',
    [c, words, pixels * words],
    pixels * words,
  )
}

export function convOnGpu(
  bits: tf.Tensor,
  [n, h, w]: [number, number, number],
  layer: BinaryConvLayer,
  prepared: Prepared,
  ep: KernelEpilogue,
): tf.Tensor4D {
  const { oh, ow, padTop, padLeft } = convGeometry(h, w, layer.k, layer.stride)
  const flags: ConvFlags = {
    k: layer.k,
    padOne: layer.padOne,
    perImage: ep.channelScale.rank === 2,
    spatial: ep.spatial !== null,
    alpha: ep.alpha !== null,
    bias: ep.bias !== null,
    residual: ep.residual !== null,
  }
  const inputs: tf.Tensor[] = [bits, prepared.weights, ep.channelScale]
  if (ep.spatial) inputs.push(ep.spatial)
  if (ep.alpha) inputs.push(ep.alpha.tensor)
  if (ep.bias) inputs.push(ep.bias.tensor)
  if (ep.residual) inputs.push(ep.residual)
  const owGroups = Math.ceil(ow / PIXELS_PER_INVOCATION)
  const threads = n * oh * owGroups * (prepared.coutPadded / CHANNELS_PER_INVOCATION)
  const uniforms = [
    h,
    w,
    layer.words,
    layer.cin,
    layer.cout,
    prepared.coutPadded,
    oh,
    ow,
    owGroups,
    layer.stride,
    padTop,
    padLeft,
    threads,
  ]
  const out = run(convProgram([n, oh, ow, layer.cout], flags), inputs, 'float32', uniforms, threads)
  return out as tf.Tensor4D
}

export function webgpuKernels(): BinaryKernels {
  const owned: tf.Tensor[] = []
  return {
    name: 'webgpu',
    prepare(layer) {
      const prepared = gpuWeights(layer)
      owned.push(prepared.weights)
      return prepared
    },
    conv(x, affine, layer, prepared, ep) {
      const [n, h, w] = x.shape
      const bits = packOnGpu(x, affine)
      const out = convOnGpu(bits, [n, h, w], layer, prepared as Prepared, ep)
      bits.dispose()
      return out
    },
    dispose() {
      tf.dispose(owned)
      owned.length = 0
    },
  }
}
