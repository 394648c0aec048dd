/**
 * The plain JavaScript binary kernels behind the tfjs tensor interface: slow, but the exact reference the
 * other backends are checked against, and a fallback that needs nothing.
 */
import * as tf from '@tensorflow/tfjs'
import { binaryConvJs, convGeometry, packActivations, type BinaryConvLayer } from './binary-conv'
import type { BinaryKernels, KernelEpilogue, Param } from './packed-model'

/** Reads the epilogue's tensors into arrays (synchronously: CPU backends only). */
export function epilogueArrays(
  ep: KernelEpilogue,
  n: number,
  cout: number,
  read = (t: tf.Tensor) => t.dataSync() as Float32Array,
) {
  const channelScale = read(ep.channelScale)
  return {
    channelScale,
    perImage: channelScale.length === n * cout && ep.channelScale.rank === 2,
    spatial: ep.spatial ? read(ep.spatial) : null,
    alpha: ep.alpha ? ep.alpha.array : null,
    bias: ep.bias ? ep.bias.array : null,
    residual: ep.residual ? read(ep.residual) : null,
  }
}

export function jsKernels(): BinaryKernels {
  return {
    name: 'js',
    prepare: () => null,
    conv(
      x: tf.Tensor4D,
      affine: { scale: Param; shift: Param } | null,
      layer: BinaryConvLayer,
      _prepared: unknown,
      ep: KernelEpilogue,
    ): tf.Tensor4D {
      const [n, h, w, c] = x.shape
      const bits = packActivations(
        x.dataSync() as Float32Array,
        n * h * w,
        c,
        affine?.scale.array ?? null,
        affine?.shift.array ?? null,
      )
      const out = binaryConvJs(bits, n, h, w, layer, epilogueArrays(ep, n, layer.cout))
      const { oh, ow } = convGeometry(h, w, layer.k, layer.stride)
      return tf.tensor4d(out, [n, oh, ow, layer.cout])
    },
    dispose: () => undefined,
  }
}
