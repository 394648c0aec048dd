/**
 * CPU-side augmentation and normalisation of a batch of uint8 H×W×C images into float32 NHWC. Crop with
 * padding, flip and rotation are folded into one inverse mapping per image, so every output pixel is read
 * once; pixels that fall outside the source image are black (0) before normalisation, as with zero padding.
 */
import { beta, permutation, randomInt, type Random } from '../../shared/random'

export interface AugmentOptions {
  /** Random crop of the image padded by this many pixels on each side, i.e. a shift of ±padding (0: off). */
  cropPadding?: number
  /** Horizontal flip with probability 1/2. */
  flip?: boolean
  /** Rotation by an angle uniform in ±this many degrees, bilinear (0: off; the method uses 15). */
  rotationDegrees?: number
  /** Mixup with λ ~ Beta(α, α) per batch, images and labels mixed with a shuffled copy of the batch (0: off). */
  mixupAlpha?: number
}

/** lut[c × 256 + v] = (v / 255 − mean[c]) / std[c]: normalisation is a table lookup. */
export function normalisationTable(mean: readonly number[], std: readonly number[]): Float32Array {
  const lut = new Float32Array(mean.length * 256)
  for (let c = 0; c < mean.length; c++) {
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v / 255 - mean[c]!) / std[c]!
  }
  return lut
}

/** Normalises without augmentation: the evaluation path. */
export function normaliseBatch(raw: Uint8Array, channels: number, lut: Float32Array): Float32Array {
  const out = new Float32Array(raw.length)
  if (channels === 1) {
    for (let i = 0; i < raw.length; i++) out[i] = lut[raw[i]!]!
  } else {
    for (let i = 0; i < raw.length; i += 3) {
      out[i] = lut[raw[i]!]!
      out[i + 1] = lut[256 + raw[i + 1]!]!
      out[i + 2] = lut[512 + raw[i + 2]!]!
    }
  }
  return out
}

/** One image's geometric augmentation: shift (dx, dy), horizontal flip, rotation angle in radians. */
export interface ImageTransform {
  dx: number
  dy: number
  flip: boolean
  angle: number
}

export function drawTransform(random: Random, options: AugmentOptions): ImageTransform {
  const pad = options.cropPadding ?? 0
  const dx = pad > 0 ? randomInt(random, 2 * pad + 1) - pad : 0
  const dy = pad > 0 ? randomInt(random, 2 * pad + 1) - pad : 0
  const flip = options.flip ? random() < 0.5 : false
  const degrees = options.rotationDegrees ?? 0
  const angle = degrees > 0 ? ((random() * 2 - 1) * degrees * Math.PI) / 180 : 0
  return { dx, dy, flip, angle }
}

/**
 * Writes the transformed, normalised image `src` (H×W×C uint8) into `out` at `outOffset`. Output pixel
 * (x, y) reads the source at the inverse transform: undo the shift, undo the rotation about the centre,
 * undo the flip.
 */
export function transformImage(
  src: Uint8Array,
  srcOffset: number,
  height: number,
  width: number,
  channels: number,
  t: ImageTransform,
  lut: Float32Array,
  out: Float32Array,
  outOffset: number,
): void {
  const cx = (width - 1) / 2
  const cy = (height - 1) / 2
  const cos = Math.cos(t.angle)
  const sin = Math.sin(t.angle)
  const rowStride = width * channels
  let o = outOffset
  if (t.angle === 0) {
    for (let y = 0; y < height; y++) {
      const sy = y - t.dy
      for (let x = 0; x < width; x++) {
        let sx = x - t.dx
        if (t.flip) sx = width - 1 - sx
        const inside = sy >= 0 && sy < height && sx >= 0 && sx < width
        const base = srcOffset + sy * rowStride + sx * channels
        for (let c = 0; c < channels; c++) out[o++] = lut[c * 256 + (inside ? src[base + c]! : 0)]!
      }
    }
    return
  }
  for (let y = 0; y < height; y++) {
    const v = y - t.dy - cy
    for (let x = 0; x < width; x++) {
      const u = x - t.dx - cx
      let sx = cos * u + sin * v + cx
      const sy = -sin * u + cos * v + cy
      if (t.flip) sx = width - 1 - sx
      const x0 = Math.floor(sx)
      const y0 = Math.floor(sy)
      const fx = sx - x0
      const fy = sy - y0
      for (let c = 0; c < channels; c++) {
        // Bilinear over the 4 neighbours; a neighbour outside the image counts as 0.
        let value = 0
        for (let k = 0; k < 4; k++) {
          const px = x0 + (k & 1)
          const py = y0 + (k >> 1)
          const weight = (k & 1 ? fx : 1 - fx) * (k >> 1 ? fy : 1 - fy)
          if (weight === 0) continue
          const pixel =
            px >= 0 && px < width && py >= 0 && py < height
              ? src[srcOffset + py * rowStride + px * channels + c]!
              : 0
          value += weight * pixel
        }
        // Interpolating raw values then normalising equals interpolating normalised values (it is affine).
        const lo = lut[c * 256]!
        const step = lut[c * 256 + 1]! - lo
        out[o++] = lo + step * value
      }
    }
  }
}

/**
 * Mixup in place: x_i ← λ x_i + (1 − λ) x_π(i), same for the label rows. Returns λ and the pairing, which
 * callers and tests can check.
 */
export function mixup(
  images: Float32Array,
  labels: Float32Array,
  n: number,
  numClasses: number,
  alpha: number,
  random: Random,
): { lambda: number; partner: Uint32Array } {
  const lambda = beta(random, alpha, alpha)
  const partner = permutation(n, random)
  const imageSize = images.length / n
  const mixedImages = new Float32Array(images.length)
  const mixedLabels = new Float32Array(labels.length)
  for (let i = 0; i < n; i++) {
    const j = partner[i]!
    for (let k = 0; k < imageSize; k++) {
      mixedImages[i * imageSize + k] =
        lambda * images[i * imageSize + k]! + (1 - lambda) * images[j * imageSize + k]!
    }
    for (let k = 0; k < numClasses; k++) {
      mixedLabels[i * numClasses + k] =
        lambda * labels[i * numClasses + k]! + (1 - lambda) * labels[j * numClasses + k]!
    }
  }
  images.set(mixedImages)
  labels.set(mixedLabels)
  return { lambda, partner }
}

/** One-hot rows for integer labels. */
export function oneHot(labels: ArrayLike<number>, classes: number): Float32Array {
  const out = new Float32Array(labels.length * classes)
  for (let i = 0; i < labels.length; i++) out[i * classes + (labels[i] as number)] = 1
  return out
}

/**
 * A step's images and label distributions as plain arrays: normalised through `lut`, then (when asked)
 * cropped, flipped and rotated per image and mixed up per batch. The part of a batch that needs no tfjs,
 * shared by every data source so augmentation means one thing everywhere.
 */
export function prepareImages(
  pixels: Uint8Array,
  labels: ArrayLike<number>,
  shape: readonly [number, number, number],
  classes: number,
  lut: Float32Array,
  augment: AugmentOptions | undefined,
  random: Random,
): { images: Float32Array; labels: Float32Array } {
  const [h, w, c] = shape
  const n = labels.length
  const size = h * w * c
  const targets = oneHot(labels, classes)
  const geometric =
    augment && ((augment.cropPadding ?? 0) > 0 || augment.flip || (augment.rotationDegrees ?? 0) > 0)
  let images: Float32Array
  if (geometric) {
    images = new Float32Array(n * size)
    for (let i = 0; i < n; i++)
      transformImage(pixels, i * size, h, w, c, drawTransform(random, augment), lut, images, i * size)
  } else {
    images = normaliseBatch(pixels, c, lut)
  }
  if (augment && (augment.mixupAlpha ?? 0) > 0)
    mixup(images, targets, n, classes, augment.mixupAlpha!, random)
  return { images, labels: targets }
}
