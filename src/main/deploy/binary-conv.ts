/**
 * The packed binary convolution, in plain JavaScript: the reference the WGSL and WebAssembly kernels are
 * tested against, and the layout they share.
 *
 * Activations: bit = 1 where scale·x + shift < 0 (sign(0) = +1), 32 channels per uint32, [N, H, W, words].
 * Weights: [cout][tap][words], same bit meaning. For ±1 vectors, a·b = n − 2·popcount(a xor b), and unused
 * high bits are 0 on both sides, so they never count.
 * Padding: a +1-padded tap is an input of all-zero bits, so it needs no special case; a 0-padded tap must
 * contribute nothing, so it is skipped (equivalently: its all-+1 contribution, the tap sum, is subtracted).
 */

export interface BinaryConvLayer {
  k: number
  cin: number
  cout: number
  stride: number
  /** Trained with +1 padding (larq pad_values=1); otherwise 0 padding. */
  padOne: boolean
  words: number
  /** [cout][k·k][words] */
  weights: Uint32Array
  /** [cout][k·k]: cin − 2·popcount(w[o, tap]), the dot product of the tap's weights with all +1. */
  tapSums: Int32Array
}

/** Per-output-channel (or per image and channel) scale, optional spatial scale, PReLU, bias and residual. */
export interface Epilogue {
  /** [cout], or [N, cout] when perImage. */
  channelScale: Float32Array
  perImage: boolean
  /** [OH, OW] or null. */
  spatial: Float32Array | null
  alpha: Float32Array | null
  bias: Float32Array | null
  /** [N, OH, OW, cout] or null. */
  residual: Float32Array | null
}

export interface ConvGeometry {
  oh: number
  ow: number
  padTop: number
  padLeft: number
}

/** TensorFlow 'same' geometry: output ceil(in / stride), the extra padded pixel after. */
export function convGeometry(h: number, w: number, k: number, stride: number): ConvGeometry {
  const oh = Math.ceil(h / stride)
  const ow = Math.ceil(w / stride)
  const padH = Math.max((oh - 1) * stride + k - h, 0)
  const padW = Math.max((ow - 1) * stride + k - w, 0)
  return { oh, ow, padTop: Math.floor(padH / 2), padLeft: Math.floor(padW / 2) }
}

export function popcount(v: number): number {
  v = v - ((v >>> 1) & 0x55555555)
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333)
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) as number
}

/** Lays a dense export bit stream ([cout][kh][kw][cin]) out for the kernels. */
export function binaryConvLayer(
  stream: Uint32Array,
  shape: number[],
  stride: number,
  padOne: boolean,
): BinaryConvLayer {
  const [k, kw, cin, cout] = shape as [number, number, number, number]
  if (k !== kw) throw new Error(`binary conv kernels are square, got ${k}×${kw}`)
  const taps = k * k
  const words = Math.ceil(cin / 32)
  const weights = new Uint32Array(cout * taps * words)
  const tapSums = new Int32Array(cout * taps)
  let bit = 0
  for (let o = 0; o < cout; o++) {
    for (let t = 0; t < taps; t++) {
      let negatives = 0
      for (let c = 0; c < cin; c++, bit++) {
        if ((stream[bit >>> 5]! >>> (bit & 31)) & 1) {
          weights[(o * taps + t) * words + (c >>> 5)]! |= 1 << (c & 31)
          negatives++
        }
      }
      tapSums[o * taps + t] = cin - 2 * negatives
    }
  }
  return { k, cin, cout, stride, padOne, words, weights, tapSums }
}

/** Sign-and-pack: bit c of pixel p is 1 where scale[c]·x + shift[c] < 0 (identity when scale is null). */
export function packActivations(
  x: Float32Array,
  pixels: number,
  channels: number,
  scale: Float32Array | null,
  shift: Float32Array | null,
): Uint32Array {
  const words = Math.ceil(channels / 32)
  const out = new Uint32Array(pixels * words)
  for (let p = 0; p < pixels; p++) {
    for (let c = 0; c < channels; c++) {
      const v = x[p * channels + c]!
      // Float32 arithmetic, as the kernels do it.
      const n = scale ? Math.fround(Math.fround(v * scale[c]!) + shift![c]!) : v
      if (n < 0) out[p * words + (c >>> 5)]! |= 1 << (c & 31)
    }
  }
  return out
}

/** Applies the epilogue to one raw dot product. */
export function epilogueValue(
  d: number,
  ep: Epilogue,
  n: number,
  p: number,
  o: number,
  cout: number,
  outIndex: number,
): number {
  let y = Math.fround(d * ep.channelScale[ep.perImage ? n * cout + o : o]!)
  if (ep.spatial) y = Math.fround(y * ep.spatial[p]!)
  if (ep.alpha && y < 0) y = Math.fround(y * ep.alpha[o]!)
  if (ep.bias) y = Math.fround(y + ep.bias[o]!)
  if (ep.residual) y = Math.fround(y + ep.residual[outIndex]!)
  return y
}

/** XNOR-popcount convolution over packed activations [N, H, W, words] → float [N, OH, OW, cout]. */
export function binaryConvJs(
  bits: Uint32Array,
  n: number,
  h: number,
  w: number,
  layer: BinaryConvLayer,
  ep: Epilogue | null,
): Float32Array {
  const { k, cin, cout, stride, padOne, words, weights } = layer
  const { oh, ow, padTop, padLeft } = convGeometry(h, w, k, stride)
  const taps = k * k
  const out = new Float32Array(n * oh * ow * cout)
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const p = oy * ow + ox
        for (let o = 0; o < cout; o++) {
          let mismatches = 0
          let used = 0
          for (let t = 0; t < taps; t++) {
            const iy = oy * stride - padTop + Math.floor(t / k)
            const ix = ox * stride - padLeft + (t % k)
            const inside = iy >= 0 && iy < h && ix >= 0 && ix < w
            if (!inside && !padOne) continue
            used++
            const wBase = (o * taps + t) * words
            const xBase = ((b * h + iy) * w + ix) * words
            for (let j = 0; j < words; j++) {
              const xv = inside ? bits[xBase + j]! : 0
              mismatches += popcount((xv ^ weights[wBase + j]!) >>> 0)
            }
          }
          const d = used * cin - 2 * mismatches
          const index = ((b * oh + oy) * ow + ox) * cout + o
          out[index] = ep ? epilogueValue(d, ep, b, p, o, cout, index) : d
        }
      }
    }
  }
  return out
}

/**
 * The plain definition: a convolution of ±1 values (any real for x: its sign, with sign(0) = +1) by ±1
 * weights [k, k, cin, cout], padded with `padValue`, in 'same' geometry. The oracle of the kernel tests.
 */
export function signConvReference(
  x: Float32Array,
  [n, h, w, cin]: [number, number, number, number],
  kernel: Float32Array,
  k: number,
  cout: number,
  stride: number,
  padValue: 0 | 1,
): Float32Array {
  const { oh, ow, padTop, padLeft } = convGeometry(h, w, k, stride)
  const sign = (v: number) => (v < 0 ? -1 : 1)
  const out = new Float32Array(n * oh * ow * cout)
  for (let b = 0; b < n; b++)
    for (let oy = 0; oy < oh; oy++)
      for (let ox = 0; ox < ow; ox++)
        for (let o = 0; o < cout; o++) {
          let sum = 0
          for (let ky = 0; ky < k; ky++)
            for (let kx = 0; kx < k; kx++) {
              const iy = oy * stride - padTop + ky
              const ix = ox * stride - padLeft + kx
              const inside = iy >= 0 && iy < h && ix >= 0 && ix < w
              for (let c = 0; c < cin; c++) {
                const xv = inside ? sign(x[((b * h + iy) * w + ix) * cin + c]!) : padValue
                sum += xv * sign(kernel[((ky * k + kx) * cin + c) * cout + o]!)
              }
            }
          out[((b * oh + oy) * ow + ox) * cout + o] = sum
        }
  return out
}
