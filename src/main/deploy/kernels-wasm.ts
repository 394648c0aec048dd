/**
 * The binary kernels on the CPU: WebAssembly SIMD (`i8x16.popcnt`) compiled from ./wasm/binary-conv.wat.
 * The module is built from source with wabt: ahead of time by scripts/build-wasm.mjs (R2B_DEPLOY_WASM points
 * at its output) or, in a development checkout, at first use.
 *
 * Memory: layer weights stay resident (laid out once, at prepare); each call copies its activations in,
 * packs, convolves with the epilogue fused, and copies the output out.
 */
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import * as tf from '@tensorflow/tfjs'
import { convGeometry, type BinaryConvLayer } from './binary-conv'
import { epilogueArrays } from './kernels-js'
import type { BinaryKernels } from './packed-model'

interface Exports {
  memory: WebAssembly.Memory
  pack(x: number, pixels: number, c: number, words: number, scale: number, shift: number, out: number): void
  conv(...args: number[]): void
}

export const WAT_SOURCE = fileURLToPath(new URL('./wasm/binary-conv.wat', import.meta.url))

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
  rowVecs: number
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

export async function wasmKernels(): Promise<BinaryKernels> {
  const instance = await WebAssembly.instantiate(await wasmModule(), {})
  const exports = instance.exports as unknown as Exports
  const arena = new Arena(exports)
  return {
    name: 'wasm',
    prepare(layer: BinaryConvLayer): Prepared {
      const taps = layer.k * layer.k
      const rowWords = taps * layer.words
      const rowVecs = Math.ceil(rowWords / 4)
      const weights = arena.keep(layer.cout * rowVecs * 16)
      const view = new Uint32Array(arena.memory, weights, layer.cout * rowVecs * 4)
      view.fill(0)
      for (let o = 0; o < layer.cout; o++)
        view.set(layer.weights.subarray(o * rowWords, (o + 1) * rowWords), o * rowVecs * 4)
      const tapSums = arena.keep(layer.tapSums.byteLength)
      new Int32Array(arena.memory, tapSums, layer.tapSums.length).set(layer.tapSums)
      return { weights, tapSums, rowVecs }
    },
    conv(x, affine, layer, preparedValue, ep) {
      const prepared = preparedValue as Prepared
      const [n, h, w, c] = x.shape
      const words = Math.ceil(c / 32)
      const { oh, ow, padTop, padLeft } = convGeometry(h, w, layer.k, layer.stride)
      const e = epilogueArrays(ep, n, layer.cout)
      try {
        const xs = arena.put(x.dataSync() as Float32Array)
        const scale = affine ? arena.put(affine.scale.array) : 0
        const shift = affine ? arena.put(affine.shift.array) : 0
        const bits = arena.scratch(n * h * w * words * 4)
        exports.pack(xs, n * h * w, c, words, scale, shift, bits)
        const channelScale = arena.put(e.channelScale)
        const spatial = e.spatial ? arena.put(e.spatial) : 0
        const alpha = e.alpha ? arena.put(e.alpha) : 0
        const bias = e.bias ? arena.put(e.bias) : 0
        const residual = e.residual ? arena.put(e.residual) : 0
        const count = n * oh * ow * layer.cout
        const out = arena.scratch(count * 4)
        const row = arena.scratch(prepared.rowVecs * 16)
        new Uint8Array(arena.memory, row, prepared.rowVecs * 16).fill(0)
        exports.conv(
          bits,
          n,
          h,
          w,
          words,
          layer.k,
          layer.stride,
          padTop,
          padLeft,
          oh,
          ow,
          prepared.weights,
          layer.cout,
          prepared.rowVecs,
          layer.cin,
          layer.padOne ? 1 : 0,
          prepared.tapSums,
          channelScale,
          e.perImage ? 1 : 0,
          spatial,
          alpha,
          bias,
          residual,
          out,
          row,
        )
        return tf.tensor4d(new Float32Array(arena.memory, out, count).slice(), [n, oh, ow, layer.cout])
      } finally {
        arena.release()
      }
    },
    dispose: () => undefined,
  }
}
