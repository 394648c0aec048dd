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
  /**
   * Random-resized crop (Inception's, as larq zoo trains ImageNet): a box of this fraction to all of the stored
   * image's area and aspect ratio in [3/4, 4/3], resized bilinearly to the input size (0: off).
   */
  resizedCropMinArea?: number
  /** Brightness, contrast and saturation each scaled by a factor uniform in [1 − j, 1 + j], in that order (0: off). */
  colorJitter?: number
}

/** A dataset's per-channel normalisation: mean and std of pixel/255, and the table of their uint8 values. */
export interface Normalisation {
  mean: readonly number[]
  std: readonly number[]
  lut: Float32Array
}

export function normalisation(mean: readonly number[], std: readonly number[]): Normalisation {
  return { mean, std, lut: normalisationTable(mean, std) }
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

/** Where the centred window of `out` pixels starts in a side of `stored` pixels (larq zoo's rounding). */
export function centreOffset(stored: number, out: number): number {
  return (stored - out + 1) >> 1
}

/** The centred out×out window of each of n stored h×w×c images: evaluation's crop of a larger store. */
export function centreCrop(
  pixels: Uint8Array,
  shape: readonly [number, number, number],
  out: number,
): Uint8Array {
  const [h, w, c] = shape
  if (out === h && out === w) return pixels
  const n = pixels.length / (h * w * c)
  const y0 = centreOffset(h, out)
  const x0 = centreOffset(w, out)
  const cropped = new Uint8Array(n * out * out * c)
  for (let i = 0; i < n; i++) {
    for (let y = 0; y < out; y++) {
      const from = ((i * h + y0 + y) * w + x0) * c
      cropped.set(pixels.subarray(from, from + out * c), (i * out + y) * out * c)
    }
  }
  return cropped
}

/** ln(4/3): aspect ratios of the resized crop are e^u for u uniform in ±this (a literal, so both engines agree). */
const LOG_RATIO = 0.28768207245178085

/** One image's crop-path augmentation: the box of the stored image resized to the input, flip, jitter factors. */
export interface CropTransform {
  box: { x: number; y: number; width: number; height: number }
  flip: boolean
  /** Brightness, contrast and saturation factors, or null without jitter. */
  jitter: [number, number, number] | null
}

/**
 * Draws a resized-crop box as Inception (and torchvision) do: up to 10 tries of an area fraction and a
 * log-uniform aspect ratio; when none fits, the centred out×out window, the evaluation crop (larq zoo's
 * fallback). Without a resized crop the box is that centred window.
 */
export function drawCropTransform(
  random: Random,
  height: number,
  width: number,
  out: number,
  options: AugmentOptions,
): CropTransform {
  const minArea = options.resizedCropMinArea ?? 0
  let box: CropTransform['box'] | null = null
  for (let attempt = 0; minArea > 0 && attempt < 10 && !box; attempt++) {
    const target = height * width * (minArea + (1 - minArea) * random())
    const ratio = Math.exp(-LOG_RATIO + 2 * LOG_RATIO * random())
    const w = Math.floor(Math.sqrt(target * ratio) + 0.5)
    const h = Math.floor(Math.sqrt(target / ratio) + 0.5)
    if (w >= 1 && w <= width && h >= 1 && h <= height)
      box = { y: randomInt(random, height - h + 1), x: randomInt(random, width - w + 1), width: w, height: h }
  }
  box ??= { x: centreOffset(width, out), y: centreOffset(height, out), width: out, height: out }
  const flip = options.flip ? random() < 0.5 : false
  const j = options.colorJitter ?? 0
  const factor = () => 1 - j + 2 * j * random()
  const jitter: CropTransform['jitter'] = j > 0 ? [factor(), factor(), factor()] : null
  return { box, flip, jitter }
}

/** Source coordinates of the `out` output positions along one side: bilinear taps and weights, edge-clamped. */
function taps(start: number, length: number, size: number, out: number, flip: boolean) {
  const lo = new Int32Array(out)
  const hi = new Int32Array(out)
  const frac = new Float64Array(out)
  const scale = length / out
  for (let o = 0; o < out; o++) {
    const at = flip ? out - 1 - o : o
    const s = Math.min(Math.max(start + (at + 0.5) * scale - 0.5, 0), size - 1)
    lo[o] = Math.floor(s)
    hi[o] = Math.min(lo[o]! + 1, size - 1)
    frac[o] = s - lo[o]!
  }
  return { lo, hi, frac }
}

const clamp255 = (v: number) => Math.min(255, Math.max(0, v))

/**
 * Writes the crop-path image into `dst` at `dstOffset`: the box of the stored h×w×c image `src` resized
 * bilinearly to out×out (flipped when drawn), colour-jittered, normalised. Raw values stay doubles until
 * the normalisation rounds them to float32 once.
 */
export function cropImage(
  src: Uint8Array,
  srcOffset: number,
  shape: readonly [number, number, number],
  out: number,
  t: CropTransform,
  norm: Normalisation,
  dst: Float32Array,
  dstOffset: number,
): void {
  const [height, width, channels] = shape
  const xs = taps(t.box.x, t.box.width, width, out, t.flip)
  const ys = taps(t.box.y, t.box.height, height, out, false)
  const raw = new Float64Array(out * out * channels)
  const at = (y: number, x: number, c: number) => src[srcOffset + (y * width + x) * channels + c]!
  let o = 0
  for (let y = 0; y < out; y++) {
    const y0 = ys.lo[y]!
    const y1 = ys.hi[y]!
    const fy = ys.frac[y]!
    for (let x = 0; x < out; x++) {
      const x0 = xs.lo[x]!
      const x1 = xs.hi[x]!
      const fx = xs.frac[x]!
      for (let c = 0; c < channels; c++) {
        const top = (1 - fx) * at(y0, x0, c) + fx * at(y0, x1, c)
        const bottom = (1 - fx) * at(y1, x0, c) + fx * at(y1, x1, c)
        raw[o++] = (1 - fy) * top + fy * bottom
      }
    }
  }
  if (t.jitter) jitterColours(raw, channels, t.jitter)
  for (let i = 0; i < raw.length; i++) {
    const c = i % channels
    dst[dstOffset + i] = (raw[i]! / 255 - norm.mean[c]!) / norm.std[c]!
  }
}

/** ITU-R 601 luma, the grey of contrast and saturation (as torchvision's rgb_to_grayscale). */
const grey = (raw: Float64Array, p: number) => 0.299 * raw[p]! + 0.587 * raw[p + 1]! + 0.114 * raw[p + 2]!

/**
 * Colour jitter in place on raw [0, 255] values, as torchvision's adjust_brightness, adjust_contrast and
 * adjust_saturation in that fixed order, each clamped to [0, 255]. Contrast blends with the image's mean grey
 * (summed in pixel order); saturation with each pixel's grey, and leaves a one-channel image as it is.
 */
function jitterColours(raw: Float64Array, channels: number, [b, k, s]: [number, number, number]): void {
  for (let i = 0; i < raw.length; i++) raw[i] = clamp255(raw[i]! * b)
  let sum = 0
  for (let p = 0; p < raw.length; p += channels) sum += channels === 3 ? grey(raw, p) : raw[p]!
  const mean = sum / (raw.length / channels)
  for (let i = 0; i < raw.length; i++) raw[i] = clamp255((raw[i]! - mean) * k + mean)
  if (channels !== 3) return
  for (let p = 0; p < raw.length; p += 3) {
    const g = grey(raw, p)
    for (let c = 0; c < 3; c++) raw[p + c] = clamp255((raw[p + c]! - g) * s + g)
  }
}

/** Whether an augmentation takes the crop path (resized crop or colour jitter) rather than the shift path. */
export function cropPath(augment: AugmentOptions | undefined): boolean {
  return !!augment && ((augment.resizedCropMinArea ?? 0) > 0 || (augment.colorJitter ?? 0) > 0)
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
 * A step's images and label distributions as plain arrays, `out`×`out` from the stored `shape`. The crop
 * path (resized crop or colour jitter): each image's box resized to the input, flipped, jittered, normalised.
 * Otherwise the shift path: the centred window (when the store is larger than the input), normalised, then
 * shifted, flipped and rotated per image. Both end with mixup per batch. The part of a batch that needs no
 * tfjs, shared by every data source so augmentation means one thing everywhere.
 */
export function prepareImages(
  pixels: Uint8Array,
  labels: ArrayLike<number>,
  shape: readonly [number, number, number],
  classes: number,
  norm: Normalisation,
  augment: AugmentOptions | undefined,
  random: Random,
  /** The input's side when it differs from the store's (a centred or resized crop of it). */
  out?: number,
): { images: Float32Array; labels: Float32Array } {
  const n = labels.length
  const c = shape[2]
  const targets = oneHot(labels, classes)
  let images: Float32Array
  if (cropPath(augment)) {
    if ((augment!.cropPadding ?? 0) > 0 || (augment!.rotationDegrees ?? 0) > 0)
      throw new RangeError('the resized crop and colour jitter go with flips only, not shifts or rotation')
    const side = out ?? shape[0]
    const stored = shape[0] * shape[1] * c
    const size = side * side * c
    images = new Float32Array(n * size)
    for (let i = 0; i < n; i++) {
      const t = drawCropTransform(random, shape[0], shape[1], side, augment!)
      cropImage(pixels, i * stored, shape, side, t, norm, images, i * size)
    }
  } else if (out === undefined) {
    images = shiftPath(pixels, n, shape, norm.lut, augment, random)
  } else {
    images = shiftPath(centreCrop(pixels, shape, out), n, [out, out, c], norm.lut, augment, random)
  }
  if (augment && (augment.mixupAlpha ?? 0) > 0)
    mixup(images, targets, n, classes, augment.mixupAlpha!, random)
  return { images, labels: targets }
}

/** Normalised images, shifted, flipped and rotated per image when asked. */
function shiftPath(
  pixels: Uint8Array,
  n: number,
  [h, w, c]: readonly [number, number, number],
  lut: Float32Array,
  augment: AugmentOptions | undefined,
  random: Random,
): Float32Array {
  const size = h * w * c
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
  return images
}
