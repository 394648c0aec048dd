import * as tf from '@tensorflow/tfjs'
import type { KernelBackend, KernelConfig, NamedTensorInfoMap, TensorInfo } from '@tensorflow/tfjs'

/**
 * `Conv2DBackpropFilter` for the tfjs wasm backend, which ships every kernel a ResNet needs except this one.
 *
 * The filter gradient is itself a convolution: dW[kh,kw,ci,co] = Σ_{n,oh,ow} x[n, oh·s+kh, ow·s+kw, ci] · dy[n,oh,ow,co].
 * Read the input channels as a batch and the batch as channels, and it is a dilated convolution of the padded
 * input x' = [Ci, Hp, Wp, N] with the output gradient as filter dy' = [OH, OW, N, Co] at dilation = stride,
 * which XNNPACK runs at full speed. Its output [Ci, ≥KH, ≥KW, Co] is cropped to the filter size and transposed
 * back to [KH, KW, Ci, Co]. Padding (same, valid, explicit) is applied beforehand, exactly as the forward pass
 * computed it, by asking tfjs for the forward conv's geometry.
 */
export function conv2dBackpropFilterByDilatedConv(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  strides: number | [number, number],
  pad: 'same' | 'valid' | number | tf.backend_util.ExplicitPadding,
  dimRoundingMode?: 'floor' | 'round' | 'ceil',
): tf.Tensor4D {
  return tf.tidy(() => {
    const info = tf.backend_util.computeConv2DInfo(
      x.shape,
      filterShape,
      strides,
      1,
      pad,
      dimRoundingMode,
      false,
      'channelsLast',
    )
    const { top, bottom, left, right } = info.padInfo
    // Rows and columns beyond what the forward pass read never contribute; negative "padding" trims them.
    const neededH = (info.outHeight - 1) * info.strideHeight + info.filterHeight
    const neededW = (info.outWidth - 1) * info.strideWidth + info.filterWidth
    let padded: tf.Tensor4D = x
    if (top > 0 || bottom > 0 || left > 0 || right > 0) {
      padded = tf.pad(x, [
        [0, 0],
        [top, Math.max(bottom, 0)],
        [left, Math.max(right, 0)],
        [0, 0],
      ])
    }
    padded = padded.slice([0, 0, 0, 0], [-1, neededH, neededW, -1])
    const input = tf.transpose(padded, [3, 1, 2, 0]) // [Ci, Hp, Wp, N]
    const filter = tf.transpose(dy, [1, 2, 0, 3]) // [OH, OW, N, Co]
    const dilations: [number, number] = [info.strideHeight, info.strideWidth]
    const out = tf.conv2d(input, filter, 1, 'valid', 'NHWC', dilations) // [Ci, KH', KW', Co]
    const cropped = out.slice([0, 0, 0, 0], [-1, info.filterHeight, info.filterWidth, -1])
    return tf.transpose(cropped, [1, 2, 0, 3])
  })
}

/** Registers the kernel on the wasm backend (idempotent). Call after the wasm backend is registered. */
export function registerWasmConv2dBackpropFilter(): void {
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) return
  const kernel: KernelConfig = {
    kernelName: 'Conv2DBackpropFilter',
    backendName: 'wasm',
    kernelFunc: ({ inputs, attrs, backend: untypedBackend }) => {
      const backend = untypedBackend as KernelBackend
      const { x, dy } = inputs as NamedTensorInfoMap
      const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs
      if (a.dataFormat !== 'NHWC')
        throw new Error(`Conv2DBackpropFilter on wasm supports NHWC only, got ${a.dataFormat}`)
      // Kernels receive TensorInfos; wrap them (without copying) so ops can be used. The wrapper takes its own
      // reference on the data, so disposing it leaves the caller's tensor intact. A Tensor returned from a
      // kernel is taken over by the engine as is, and nested ops are not recorded on the gradient tape.
      const asTensor = (info: TensorInfo | undefined) => {
        if (!info) throw new Error('Conv2DBackpropFilter: missing input')
        const tensor = tf.engine().makeTensorFromTensorInfo(info, backend) as tf.Tensor4D
        backend.incRef(info.dataId)
        return tensor
      }
      const xt = asTensor(x)
      const dyt = asTensor(dy)
      try {
        return conv2dBackpropFilterByDilatedConv(
          xt,
          dyt,
          a.filterShape as [number, number, number, number],
          a.strides,
          a.pad,
          a.dimRoundingMode,
        )
      } finally {
        xt.dispose()
        dyt.dispose()
      }
    },
  }
  tf.registerKernel(kernel)
}
