/**
 * The training backend: picks and initialises the tfjs backend the worker trains on, and says why.
 *
 * Order of preference: WebGPU on a hardware adapter (through Dawn, the `webgpu` package, in plain Node and in
 * Electron's utilityProcess alike), else the wasm backend (XNNPACK + SIMD, several times faster on CPUs than
 * WebGPU on a software adapter), else the plain cpu backend. `R2B_BACKEND=webgpu|wasm|cpu` forces a choice.
 */
import { createRequire } from 'node:module'
import { dirname } from 'node:path'
import { pathToFileURL } from 'node:url'
import * as tf from '@tensorflow/tfjs'
import {
  BackendRequest,
  type AdapterReport,
  type BackendName,
  type BackendReport,
} from '../../shared/backend'
import { registerWasmConv2dBackpropFilter } from './wasm-conv2d-backprop-filter'

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|software|microsoft basic render|\bwarp\b/i

interface WebGpuProbe {
  gpu: GPU
  adapter: GPUAdapter
  report: AdapterReport
}

let dawn: GPU | null = null
let current: BackendReport | null = null

/** Reads `R2B_BACKEND`; anything but auto/webgpu/wasm/cpu is an error that names the allowed values. */
export function requestedBackend(env: NodeJS.ProcessEnv = process.env): BackendRequest {
  const raw = env.R2B_BACKEND?.trim().toLowerCase()
  if (!raw) return 'auto'
  const parsed = BackendRequest.safeParse(raw)
  if (!parsed.success) {
    throw new Error(
      `R2B_BACKEND=${env.R2B_BACKEND} is not a backend: use one of ${BackendRequest.options.join(', ')}`,
    )
  }
  return parsed.data
}

export function describeAdapter(info: {
  vendor: string
  architecture: string
  device: string
  description: string
  isFallbackAdapter?: boolean
}): AdapterReport {
  const text = [info.vendor, info.architecture, info.device, info.description].join(' ')
  return {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware:
      info.isFallbackAdapter === true || info.architecture === 'software' || SOFTWARE_ADAPTER.test(text),
  }
}

function adapterName(adapter: AdapterReport): string {
  return (
    adapter.description || [adapter.vendor, adapter.device].filter(Boolean).join(' ') || 'unnamed adapter'
  )
}

/**
 * Makes Dawn's WebGPU the process's `navigator.gpu` and asks it for an adapter. This must happen before
 * `@tensorflow/tfjs-backend-webgpu` is imported: it registers itself only if `navigator.gpu` exists then.
 */
async function probeWebGpu(): Promise<WebGpuProbe | null> {
  const { create, globals } = await import('webgpu')
  Object.assign(globalThis, globals)
  dawn ??= create([])
  // Electron's utilityProcess and Node ≥ 21 define a read-only `navigator`; replace it for this process.
  const existing = (globalThis as { navigator?: object }).navigator
  Object.defineProperty(globalThis, 'navigator', {
    value: Object.assign(Object.create(existing ?? null) as object, { gpu: dawn }),
    configurable: true,
    writable: true,
  })
  const adapter = await dawn.requestAdapter({ powerPreference: 'high-performance' })
  if (!adapter) return null
  return { gpu: dawn, adapter, report: describeAdapter(adapter.info) }
}

/** Where the wasm backend's .wasm binaries are: `R2B_WASM_DIR`, else next to the installed package. */
export function wasmBinaryDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.R2B_WASM_DIR) return env.R2B_WASM_DIR.endsWith('/') ? env.R2B_WASM_DIR : `${env.R2B_WASM_DIR}/`
  const require = createRequire(import.meta.url)
  return `${dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm'))}/`
}

async function startWebGpu(): Promise<void> {
  await import('@tensorflow/tfjs-backend-webgpu')
  if (!(await tf.setBackend('webgpu'))) throw new Error('the tfjs webgpu backend failed to initialise')
}

async function startWasm(): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm')
  wasm.setWasmPaths(pathToFileURL(wasmBinaryDir()).pathname)
  if (!(await tf.setBackend('wasm')))
    throw new Error(`the tfjs wasm backend failed to initialise (binaries: ${wasmBinaryDir()})`)
  registerWasmConv2dBackpropFilter()
  return tf.env().getBool('WASM_HAS_SIMD_SUPPORT')
}

async function startCpu(): Promise<void> {
  if (!(await tf.setBackend('cpu'))) throw new Error('the tfjs cpu backend failed to initialise')
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * Selects and initialises the backend (once per process; later calls return the same report).
 * Automatic selection never throws for lack of a GPU: it falls back and says so. A forced choice that cannot
 * be honoured throws an error that says what to install or change.
 */
export async function initBackend(request: BackendRequest = requestedBackend()): Promise<BackendReport> {
  if (current) {
    // A second, different backend asked for by name would silently measure or train on the first one.
    if (request !== 'auto' && request !== current.backend)
      throw new Error(
        `the ${current.backend} backend already runs in this process; release it before asking for ${request}`,
      )
    return current
  }
  // Silences tfjs's console advice (e.g. to install tfjs-node, which cannot serve WebGPU or Electron).
  tf.env().set('PROD', true)
  const base = { requested: request, tfjsVersion: tf.version.tfjs }

  let probe: WebGpuProbe | null = null
  let probeError: string | null = null
  if (request === 'auto' || request === 'webgpu') {
    try {
      probe = await probeWebGpu()
    } catch (error) {
      probeError = errorText(error)
    }
  }
  const adapter = probe?.report ?? null

  if (request === 'webgpu') {
    if (!probe) {
      throw new Error(
        `R2B_BACKEND=webgpu, but WebGPU has no adapter${probeError ? ` (${probeError})` : ''}: install a Vulkan, ` +
          'Metal or D3D12 driver for your GPU (or Mesa >= 25 lavapipe on a machine without one), or unset R2B_BACKEND',
      )
    }
    await startWebGpu()
    current = {
      ...base,
      backend: 'webgpu',
      adapter,
      wasmSimd: null,
      slow: probe.report.isSoftware,
      reason: `forced by R2B_BACKEND=webgpu; adapter ${adapterName(probe.report)}${
        probe.report.isSoftware ? ' is a software (CPU) adapter: training will be slow' : ''
      }`,
    }
    return current
  }

  if (request === 'auto' && probe && !probe.report.isSoftware) {
    await startWebGpu()
    current = {
      ...base,
      backend: 'webgpu',
      adapter,
      wasmSimd: null,
      slow: false,
      reason: `hardware WebGPU adapter: ${adapterName(probe.report)}`,
    }
    return current
  }
  // Not training on WebGPU: let Dawn go so it does not keep the process alive.
  releaseDawn()

  const why =
    request !== 'auto'
      ? `forced by R2B_BACKEND=${request}`
      : probe
        ? `only a software WebGPU adapter was found (${adapterName(probe.report)}); the wasm backend trains several times faster on a CPU`
        : `no WebGPU adapter was found${probeError ? ` (${probeError})` : ''}; training on the CPU`

  if (request === 'auto' || request === 'wasm') {
    try {
      const wasmSimd = await startWasm()
      current = {
        ...base,
        backend: 'wasm',
        adapter,
        wasmSimd,
        slow: true,
        reason: `${why}: wasm backend (XNNPACK${wasmSimd ? ', SIMD' : ', no SIMD'})`,
      }
      return current
    } catch (error) {
      if (request === 'wasm') throw new Error(`R2B_BACKEND=wasm, but ${errorText(error)}`)
      return fallBackToCpu(`${why}; the wasm backend failed (${errorText(error)})`)
    }
  }
  return fallBackToCpu(why)

  async function fallBackToCpu(because: string): Promise<BackendReport> {
    await startCpu()
    current = {
      ...base,
      backend: 'cpu',
      adapter,
      wasmSimd: null,
      slow: true,
      reason: `${because}: plain JavaScript cpu backend, very slow`,
    }
    return current
  }
}

function releaseDawn(): void {
  const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator
  if (nav && Object.prototype.hasOwnProperty.call(nav, 'gpu')) delete nav.gpu
  dawn = null
}

/**
 * Frees the backend's tensors and lets Dawn go, so the process can exit on its own. Called once, when the
 * worker shuts down: the backend is selected once per process.
 */
export function releaseBackend(): void {
  if (current) {
    const name: BackendName = current.backend
    tf.engine().disposeVariables()
    if (tf.findBackend(name)) tf.removeBackend(name)
  }
  releaseDawn()
  current = null
}
