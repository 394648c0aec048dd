/** Picks the binary kernels for the active tfjs backend: WGSL on webgpu, WebAssembly SIMD on the CPU. */
import * as tf from '@tensorflow/tfjs'
import { jsKernels } from './kernels-js'
import { wasmKernels, wasmSimdAvailable } from './kernels-wasm'
import { webgpuKernels } from './kernels-webgpu'
import type { BinaryKernels } from './packed-model'

export async function kernelsForBackend(): Promise<BinaryKernels> {
  if (tf.getBackend() === 'webgpu') return webgpuKernels()
  if (await wasmSimdAvailable()) return wasmKernels()
  return jsKernels()
}
