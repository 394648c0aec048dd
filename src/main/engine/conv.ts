/**
 * A 2-D convolution whose input gradient is itself computed as a forward convolution.
 *
 * tfjs's wasm backend runs Conv2D through XNNPACK but its Conv2DBackpropInput is a plain loop, which made it
 * the largest single cost of a training step here (about 40%). The input gradient of a convolution is a
 * convolution of the stride-dilated output gradient with the spatially flipped, in/out-transposed kernel, so
 * it can run on the fast kernel. Other backends keep their own gradient.
 */
import * as tf from '@tensorflow/tfjs'
import { samePadding } from './padding'

export type ConvPadding = 'same' | 'valid'

/** Inserts stride − 1 zeros between rows and columns: [N, H, W, C] → [N, (H−1)s+1, (W−1)s+1, C]. */
function dilate(dy: tf.Tensor4D, stride: number): tf.Tensor4D {
  if (stride === 1) return dy
  const [n, h, w, c] = dy.shape
  const spread = tf.pad(tf.reshape(dy, [n, h, 1, w, 1, c]), [
    [0, 0],
    [0, 0],
    [0, stride - 1],
    [0, 0],
    [0, stride - 1],
    [0, 0],
  ])
  const full = tf.reshape(spread, [n, h * stride, w * stride, c])
  return tf.slice(full, [0, 0, 0, 0], [n, (h - 1) * stride + 1, (w - 1) * stride + 1, c]) as tf.Tensor4D
}

/** dL/dx of conv2d(x, filter, stride, padding) for a square kernel, by forward convolutions only. */
export function conv2dInputGradient(
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  inputShape: [number, number, number, number],
  stride: number,
  padding: ConvPadding,
): tf.Tensor4D {
  return tf.tidy(() => {
    const [, height, width] = inputShape
    const k = filter.shape[0]
    const [top] = padding === 'same' ? samePadding(height, k, stride) : [0, 0]
    const [left] = padding === 'same' ? samePadding(width, k, stride) : [0, 0]
    const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2])
    const spread = tf.pad(dilate(dy, stride), [
      [0, 0],
      [k - 1, k - 1],
      [k - 1, k - 1],
      [0, 0],
    ])
    // The gradient of the padded input; rows the forward pass never read stay zero.
    const paddedGrad = tf.conv2d(spread, flipped, 1, 'valid')
    const [, gh, gw] = paddedGrad.shape
    const cropH = Math.min(height, gh - top)
    const cropW = Math.min(width, gw - left)
    const cropped = tf.slice(paddedGrad, [0, top, left, 0], [-1, cropH, cropW, -1])
    if (cropH === height && cropW === width) return cropped
    return tf.pad(cropped, [
      [0, 0],
      [0, height - cropH],
      [0, width - cropW],
      [0, 0],
    ])
  })
}

function useForwardConvGradient(): boolean {
  return tf.getBackend() === 'wasm'
}

export function conv2d(
  x: tf.Tensor4D,
  filter: tf.Tensor4D,
  stride: number,
  padding: ConvPadding,
): tf.Tensor4D {
  if (!useForwardConvGradient()) return tf.conv2d(x, filter, stride, padding)
  const op = tf.customGrad((...args) => {
    const [input, kernel] = args as [tf.Tensor4D, tf.Tensor4D]
    ;(args[2] as tf.GradSaveFunc)([input, kernel])
    return {
      value: tf.conv2d(input, kernel, stride, padding),
      gradFunc: (dy, saved) => {
        const [xs, ws] = saved as [tf.Tensor4D, tf.Tensor4D]
        const dy4 = dy as tf.Tensor4D
        const dx = conv2dInputGradient(dy4, ws, xs.shape, stride, padding)
        const dw = tf
          .engine()
          .runKernel(
            'Conv2DBackpropFilter',
            { x: xs, dy: dy4 },
            { strides: [stride, stride], pad: padding, dataFormat: 'NHWC', filterShape: ws.shape },
          ) as tf.Tensor4D
        return [dx, dw]
      },
    }
  })
  return op(x, filter) as tf.Tensor4D
}
