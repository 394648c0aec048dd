/**
 * Attention matching (Zagoruyko & Komodakis, as Real-to-Bin uses it): a spatial map per image from the
 * squared activations of a transfer point, normalised per image, compared between teacher and student.
 *
 * Two forms: the paper's (Eq. 2: Q = Σ_c A², divided by its L2 norm; L2 distance per point, summed over
 * points) and larq zoo's (mean_c A², divided by its maximum; mean squared difference per point, averaged over
 * points). Both average over the batch.
 */
import * as tf from '@tensorflow/tfjs'

export type AttentionForm = 'paper' | 'larq'

// Keeps an all-zero map (a dead transfer point) from dividing by zero; far below any real activation energy.
const EPSILON = 1e-12

/** Normalised attention maps [N, H·W] of activations [N, H, W, C]. */
export function attentionMap(activations: tf.Tensor4D, form: AttentionForm): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, h, w] = activations.shape
    const squared = tf.square(activations)
    const energy = tf.reshape(form === 'paper' ? tf.sum(squared, 3) : tf.mean(squared, 3), [n, h * w])
    const norm = form === 'paper' ? tf.sqrt(tf.sum(tf.square(energy), 1, true)) : tf.max(energy, 1, true)
    return tf.div(energy, tf.add(norm, EPSILON)) as tf.Tensor2D
  })
}

/** The (unweighted) attention-matching loss over matched transfer points. */
export function attentionLoss(
  student: tf.Tensor4D[],
  teacher: tf.Tensor4D[],
  form: AttentionForm,
): tf.Scalar {
  if (student.length !== teacher.length)
    throw new Error(`${student.length} student points vs ${teacher.length}`)
  return tf.tidy(() => {
    const perPoint = student.map((s, j) => {
      const t = teacher[j] as tf.Tensor4D
      if (s.shape[1] !== t.shape[1] || s.shape[2] !== t.shape[2]) {
        throw new Error(`transfer point ${j}: student ${s.shape} and teacher ${t.shape} differ in space`)
      }
      const difference = tf.sub(attentionMap(s, form), attentionMap(t, form))
      if (form === 'paper') return tf.mean(tf.sqrt(tf.add(tf.sum(tf.square(difference), 1), EPSILON)))
      return tf.mean(tf.square(difference))
    })
    const stacked = tf.stack(perPoint)
    return (form === 'paper' ? tf.sum(stacked) : tf.mean(stacked)) as tf.Scalar
  })
}
