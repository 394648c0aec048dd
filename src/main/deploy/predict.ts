/** Top-k predictions of an export on image files, on the active backend. */
import * as tf from '@tensorflow/tfjs'
import { DeployError } from './errors'
import { imageInput, readExport } from './export-run'
import { kernelsForBackend } from './kernels'
import { PackedModel } from './packed-model'

export interface Prediction {
  image: string
  top: { label: number; name: string; probability: number }[]
  /** Set when the image's channels were converted to the model's. */
  converted: string | null
}

export async function predictImages(modelFile: string, images: string[], k = 5): Promise<Prediction[]> {
  if (images.length === 0) throw new DeployError('no images given: predict FILE IMAGE…')
  const decoded = await readExport(modelFile)
  const inputs = await Promise.all(images.map((file) => imageInput(file, decoded.header)))
  const model = new PackedModel(decoded, await kernelsForBackend())
  try {
    const [h, w, c] = model.inputShape
    const batch = new Float32Array(inputs.length * h * w * c)
    inputs.forEach((input, i) => batch.set(input.values, i * h * w * c))
    const probabilities = tf.tidy(() =>
      tf.softmax(model.predict(tf.tensor4d(batch, [inputs.length, h, w, c]))),
    )
    const values = (await probabilities.data()) as Float32Array
    probabilities.dispose()
    const classes = decoded.header.model.classes
    return images.map((image, i) => {
      const row = Array.from(values.subarray(i * classes, (i + 1) * classes))
      const top = row
        .map((probability, label) => ({
          label,
          name: decoded.header.classes[label] ?? `class ${label}`,
          probability,
        }))
        .sort((a, b) => b.probability - a.probability)
        .slice(0, k)
      return { image, top, converted: inputs[i]!.converted }
    })
  } finally {
    model.dispose()
    model.kernels.dispose()
  }
}
