/**
 * The binary kernels on the CPU: WebAssembly SIMD compiled from ./wasm/binary-conv.wat.
 * The module is built from source with wabt: ahead of time by `npm run build:wasm` (R2B_DEPLOY_WASM points
 * at its output) or, in a development checkout, at first use.
 *
 * Memory: layer weights stay resident (laid out once, at prepare); each call copies its activations in,
 * packs, convolves, applies the epilogue in place, and copies the output out.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import * as tf from '@tensorflow/tfjs'
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm'
import { convGeometry, popcount as popcount32, type BinaryConvLayer } from './binary-conv'
import { epilogueArrays } from './kernels-js'
import type { BinaryKernels } from './packed-model'

interface Exports {
  memory: WebAssembly.Memory
  pack(...args: number[]): void
  conv(...args: number[]): void
  unpad(...args: number[]): void
  epilogue(...args: number[]): void
  xorPopcount(buf: number, bytes: number, reps: number, simd: number): bigint
}

const WAT_SOURCE = fileURLToPath(new URL('./wasm/binary-conv.wat', import.meta.url))

/** Compiles the WAT source to a wasm binary (SIMD enabled). */
export async function buildBinaryConvWasm(watPath = WAT_SOURCE): Promise<Uint8Array> {
  const { default: initWabt } = await import('wabt')
  const wabt = await initWabt()
  const module = wabt.parseWat(watPath, await readFile(watPath, 'utf8'), { simd: true })
  try {
    module.validate()
    return module.toBinary({}).buffer
  } finally {
    module.destroy()
  }
}

let compiled: Promise<WebAssembly.Module> | null = null

function wasmModule(): Promise<WebAssembly.Module> {
  compiled ??= (async () => {
    const prebuilt = process.env.R2B_DEPLOY_WASM
    const bytes = prebuilt ? await readFile(prebuilt) : await buildBinaryConvWasm()
    return WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>)
  })()
  return compiled
}

/** Whether this runtime has WebAssembly SIMD with the relaxed-free popcount this module uses. */
export async function wasmSimdAvailable(): Promise<boolean> {
  try {
    await wasmModule()
    return true
  } catch {
    return false
  }
}

interface Prepared {
  weights: number
  tapSums: number
  units: number
}

class Arena {
  /** Persistent allocations end here; per-call scratch starts here and is released after the call. */
  private persistent = 16
  private top = 16

  constructor(private readonly exports: Exports) {}

  get memory(): ArrayBuffer {
    return this.exports.memory.buffer
  }

  private reserve(bytes: number): number {
    const at = (this.top + 15) & ~15
    const end = at + bytes
    const have = this.exports.memory.buffer.byteLength
    if (end > have) this.exports.memory.grow(Math.ceil((end - have) / 65536))
    this.top = end
    return at
  }

  keep(bytes: number): number {
    if (this.top !== this.persistent) throw new Error('persistent allocation during a call')
    const at = this.reserve(bytes)
    this.persistent = this.top
    return at
  }

  scratch(bytes: number): number {
    return this.reserve(bytes)
  }

  /** Copies values into fresh scratch memory. */
  put(values: Float32Array | Int32Array | Uint32Array): number {
    const at = this.scratch(values.byteLength)
    new Uint8Array(this.memory, at, values.byteLength).set(
      new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
    )
    return at
  }

  release(): void {
    this.top = this.persistent
  }
}

/**
 * On tfjs's wasm backend, tensors live in its heap: they move between it and this module's memory with one
 * copy and no JavaScript array between (what dataSync and tf.tensor would cost on every layer).
 */
function tfjsHeap(): BackendWasm | null {
  return tf.getBackend() === 'wasm' ? (tf.backend() as BackendWasm) : null
}

function floats(t: tf.Tensor): Float32Array {
  const heap = tfjsHeap()
  return (heap ? heap.typedArrayFromHeap(t) : t.dataSync()) as Float32Array
}

function tensorOf(values: Float32Array, shape: [number, number, number, number]): tf.Tensor4D {
  const heap = tfjsHeap()
  if (!heap) return tf.tensor4d(values.slice(), shape)
  const info = heap.makeOutput(shape, 'float32')
  ;(heap.typedArrayFromHeap(info) as Float32Array).set(values)
  return tf.engine().makeTensorFromTensorInfo(info) as tf.Tensor4D
}

/**
 * How the conv counts mismatching bits. `simd` (i8x16.popcnt) is one NEON instruction on ARM, while x86 has no
 * byte popcount below AVX-512 BITALG and V8 lowers it to a byte-shuffle sequence there; `scalar` (i64.popcnt)
 * is x86's native POPCNT. Both give the same result; `bench deploy` measures the two side by side.
 */
export type Popcount = 'simd' | 'scalar'

export const defaultPopcount = (): Popcount =>
  process.arch === 'x64' || process.arch === 'ia32' ? 'scalar' : 'simd'

export interface PopcountMeter {
  /** One timing of about `ms` (set at creation), in bits per millisecond. */
  bitsPerMs(): number
}

/**
 * XOR-popcount throughput of this CPU in WebAssembly: the conv's inner loop with nothing else to do, over 4 KiB
 * that stay in the L1 cache. No packed conv can count its mismatches faster, so it bounds the speed-up over a
 * float conv from above (`bench deploy`). Each timing's count is checked against a count in JavaScript, so the
 * figure is of work actually done.
 */
export async function popcountMeter(popcount: Popcount = defaultPopcount(), ms = 5): Promise<PopcountMeter> {
  const instance = await WebAssembly.instantiate(await wasmModule(), {})
  const exports = instance.exports as unknown as Exports
  const [buf, bytes] = [64, 4096]
  const words = new Uint32Array(exports.memory.buffer, buf, bytes / 4)
  for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 0x9e3779b1) >>> 0
  // Each pass XORs every 16-byte unit with the first one.
  let perPass = 0
  for (let i = 0; i < words.length; i++) perPass += popcount32(words[i]! ^ words[i & 3]!)
  const simd = popcount === 'simd' ? 1 : 0
  const time = (reps: number) => {
    const t0 = globalThis.performance.now()
    const count = exports.xorPopcount(buf, bytes, reps, simd)
    const elapsed = globalThis.performance.now() - t0
    if (count !== BigInt(perPass * reps))
      throw new Error(`xorPopcount counted ${count} bits, not ${perPass * reps}: the kernel module is broken`)
    return elapsed
  }
  // Warm up (tier-up to optimised code), then size a timing to about `ms`.
  let reps = 64
  while (time(reps) < ms / 4) reps *= 2
  reps = Math.ceil((reps * ms) / time(reps))
  return { bitsPerMs: () => (reps * bytes * 8) / time(reps) }
}

export async function wasmKernels(popcount: Popcount = defaultPopcount()): Promise<BinaryKernels> {
  const instance = await WebAssembly.instantiate(await wasmModule(), {})
  const exports = instance.exports as unknown as Exports
  const arena = new Arena(exports)
  return {
    name: 'wasm',
    detail: `${popcount} popcount`,
    prepare(layer: BinaryConvLayer): Prepared {
      // The 0-padding correction keeps a window's outside taps as bits of one i32.
      if (layer.k > 5)
        throw new Error(`the WebAssembly kernels take kernels up to 5×5, not ${layer.k}×${layer.k}`)
      // Each output channel's window of weights, zero-filled to whole 16-byte units as the gathered inputs are.
      const windowWords = layer.k * layer.k * layer.words
      const units = Math.ceil(windowWords / 4)
      const weights = arena.keep(layer.cout * units * 16)
      const view = new Uint32Array(arena.memory, weights, layer.cout * units * 4)
      view.fill(0)
      for (let o = 0; o < layer.cout; o++)
        view.set(layer.weights.subarray(o * windowWords, (o + 1) * windowWords), o * units * 4)
      const tapSums = arena.keep(layer.tapSums.byteLength)
      new Int32Array(arena.memory, tapSums, layer.tapSums.length).set(layer.tapSums)
      return { weights, tapSums, units }
    },
    conv(x, affine, layer, preparedValue, ep) {
      const prepared = preparedValue as Prepared
      const [n, h, w, c] = x.shape
      const words = Math.ceil(c / 32)
      const { oh, ow, padTop, padLeft } = convGeometry(h, w, layer.k, layer.stride)
      // The packed input with its padding border: every window lies inside it.
      const hp = Math.max((oh - 1) * layer.stride + layer.k, padTop + h)
      const wp = Math.max((ow - 1) * layer.stride + layer.k, padLeft + w)
      const e = epilogueArrays(ep, n, layer.cout, floats)
      try {
        const xs = arena.put(floats(x))
        const scale = affine ? arena.put(affine.scale.array) : 0
        const shift = affine ? arena.put(affine.shift.array) : 0
        const bitsBytes = n * hp * wp * words * 4
        const bits = arena.scratch(bitsBytes)
        new Uint8Array(arena.memory, bits, bitsBytes).fill(0)
        exports.pack(xs, n, h, w, c, words, scale, shift, bits, hp, wp, padTop, padLeft)
        const channelScale = arena.put(e.channelScale)
        const spatial = e.spatial ? arena.put(e.spatial) : 0
        const alpha = e.alpha ? arena.put(e.alpha) : 0
        const bias = e.bias ? arena.put(e.bias) : 0
        const residual = e.residual ? arena.put(e.residual) : 0
        const count = n * oh * ow * layer.cout
        // The conv may write three pixels past the output (see the WAT).
        const out = arena.scratch((count + 3 * layer.cout) * 4)
        // Four pixels' windows, interleaved by unit; the zero fill past each window stays as it is.
        const win = arena.scratch(prepared.units * 64)
        new Uint8Array(arena.memory, win, prepared.units * 64).fill(0)
        exports.conv(
          bits,
          n,
          hp,
          wp,
          words,
          layer.k,
          layer.stride,
          oh,
          ow,
          prepared.weights,
          prepared.units,
          layer.cout,
          layer.cin,
          win,
          out,
          popcount === 'simd' ? 1 : 0,
        )
        // With 0 padding, the border pixels' outside taps come back out.
        if (!layer.padOne)
          exports.unpad(
            out,
            n,
            oh,
            ow,
            layer.cout,
            layer.k,
            layer.stride,
            h,
            w,
            padTop,
            padLeft,
            prepared.tapSums,
          )
        exports.epilogue(
          out,
          n,
          oh * ow,
          layer.cout,
          channelScale,
          e.perImage ? 1 : 0,
          spatial,
          alpha,
          bias,
          residual,
        )
        return tensorOf(new Float32Array(arena.memory, out, count), [n, oh, ow, layer.cout])
      } finally {
        arena.release()
      }
    },
    dispose: () => undefined,
  }
}
