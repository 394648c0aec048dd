/**
 * Quantizers: each a small named function with its gradient beside it (as in larq/quantizers.py).
 *
 * tfjs's `tf.sign(0)` is 0 and its gradient is zero everywhere, so neither is usable here: binary activations
 * must be strictly ±1 (sign(0) = +1) and the backward pass needs a pseudo-gradient, written with customGrad.
 */
import * as tf from '@tensorflow/tfjs'
import type { ActivationQuantizer } from '../../shared/run-config'

/** sign with sign(0) = +1: sign(sign(x) + ½) maps {-1, 0, 1} to {-1, 1, 1}. */
export function signPlusOne<T extends tf.Tensor>(x: T): T {
  return tf.tidy(() => tf.sign(tf.add(tf.sign(x), 0.5))) as T
}

/** Forward sign(x) with sign(0) = +1; backward dy times `pseudoGradient(x)`, the quantizer's stand-in slope. */
function signWithPseudoGradient(x: tf.Tensor, pseudoGradient: (x: tf.Tensor) => tf.Tensor): tf.Tensor {
  const op = tf.customGrad((...args) => {
    const value = args[0] as tf.Tensor
    ;(args[1] as tf.GradSaveFunc)([value])
    return {
      value: signPlusOne(value),
      gradFunc: (dy, saved) => tf.mul(dy, pseudoGradient((saved as [tf.Tensor])[0])),
    }
  })
  return op(x)
}

/** Straight-through sign (larq `ste_sign`): forward sign(x) with sign(0) = +1, backward dy·1{|x| ≤ clip}. */
export function steSign(x: tf.Tensor, clip = 1): tf.Tensor {
  return signWithPseudoGradient(x, (xs) => tf.cast(tf.lessEqual(tf.abs(xs), clip), 'float32'))
}

/** Bi-Real Net's ApproxSign: forward sign(x), backward dy·(2 − 2|x|)·1{|x| ≤ 1}. */
export function approxSign(x: tf.Tensor): tf.Tensor {
  return signWithPseudoGradient(x, (xs) => {
    const magnitude = tf.abs(xs)
    return tf.mul(tf.sub(2, tf.mul(2, magnitude)), tf.cast(tf.lessEqual(magnitude, 1), 'float32'))
  })
}

/** The activation quantizer q(·) of the binary block. */
export function quantizeActivation(x: tf.Tensor, kind: ActivationQuantizer, steClip = 1): tf.Tensor {
  switch (kind) {
    case 'identity':
      return x
    case 'tanh':
      return tf.tanh(x)
    case 'sign':
      return steSign(x, steClip)
    case 'approxsign':
      return approxSign(x)
  }
}

/** True when the quantizer's output is ±1, i.e. the convolution it feeds is binary on the input side. */
export function isBinaryActivation(kind: ActivationQuantizer): boolean {
  return kind === 'sign' || kind === 'approxsign'
}

export type WeightScale = 'none' | 'mean' | 'learned'

/**
 * Binary weights from latent real weights [kh, kw, cin, cout]: sign with the straight-through estimator (clip 1:
 * latent weights live in [-1, 1] anyway when clipped), optionally times a per-output-channel scale: XNOR-Net's
 * analytic mean |w| over (kh, kw, cin), or a learned vector.
 */
export function quantizeWeights(latent: tf.Tensor4D, scale: WeightScale, learned?: tf.Tensor1D): tf.Tensor4D {
  const binary = steSign(latent, 1) as tf.Tensor4D
  switch (scale) {
    case 'none':
      return binary
    case 'mean':
      return tf.mul(binary, tf.mean(tf.abs(latent), [0, 1, 2]))
    case 'learned':
      if (!learned) throw new Error('a learned weight scale needs its variable')
      return tf.mul(binary, learned)
  }
}
