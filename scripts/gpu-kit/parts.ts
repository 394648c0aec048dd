/**
 * The kit's parts: each one measures one thing, in a process of its own (started by ./orchestrate.ts), and
 * returns its figures and the paths of what it used. A part that throws reports its error; the others run on.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import * as tf from '@tensorflow/tfjs'
import { initBackend, releaseBackend } from '../../src/main/backend/backend'
import { importDataset } from '../../src/main/datasets/import'
import { benchDeploy } from '../../src/main/deploy/bench'
import { benchTrain } from '../../src/main/engine/bench'
import { RunStore } from '../../src/main/runs/run-store'
import { createRun } from '../../src/main/training/new-run'
import {
  benchTorchStep,
  PYTHON_PACKAGE_SOURCE,
  pythonCommand,
  torchEngineInfo,
} from '../../src/main/training/torch-engine'
import { Trainer } from '../../src/main/training/trainer'
import { launchWorkerProcess } from '../../src/main/training/worker-client'
import type { StepRecord } from '../../src/shared/records'
import type { KitSizes } from './sizes'

export type Figures = Record<string, number | string>

export interface PartResult {
  figures: Figures
  /** What the part used, by what it is: checked against the kit's folders by the orchestrator. */
  paths: Record<string, string>
  /** Every file mapped into this process when the part ended (shared libraries, the addon, the binary). */
  mapped: string[]
}

export interface PartContext {
  sizes: KitSizes
  dry: boolean
  kitDir: string
  workDir: string
  /** Rewrites the part's result file with what it has so far (a part cut off at its time limit keeps it). */
  progress(result: PartResult): void
}

type Part = (context: PartContext) => Promise<Omit<PartResult, 'mapped'>>

/** The files mapped into this process (Linux): the binary, shared libraries, the Dawn addon, ICDs. */
export function mappedFiles(): string[] {
  try {
    const files = new Set<string>()
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const at = line.indexOf(' /')
      if (at >= 0 && !line.includes(' /memfd:')) files.add(line.slice(at + 1).replace(/ \(deleted\)$/, ''))
    }
    return [...files].sort()
  } catch {
    return []
  }
}

const bundlePath = (): string => fileURLToPath(import.meta.url)

/** The paths every part reports: this Node binary and this bundle. */
function basePaths(): Record<string, string> {
  return { node: process.execPath, bundle: bundlePath() }
}

const round = (value: number, digits = 2) => Number(value.toFixed(digits))

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

async function run(command: string, args: string[], timeoutMs = 20_000): Promise<string> {
  const { stdout } = await promisify(execFile)(command, args, { timeout: timeoutMs, encoding: 'utf8' })
  return stdout.trim()
}

/** One line per GPU from nvidia-smi, or why there is none. */
async function nvidiaSmi(): Promise<string> {
  try {
    const out = await run('nvidia-smi', [
      '--query-gpu=name,driver_version,memory.total',
      '--format=csv,noheader',
    ])
    return out.split('\n').join('; ') || 'nvidia-smi listed no GPU'
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? 'no nvidia-smi on PATH' : `nvidia-smi failed: ${oneLine(error)}`
  }
}

export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  return (
    text
      .split('\n')
      .find((line) => line.trim())
      ?.trim() ?? text
  )
}

/** The libraries that make WebGPU work here, found among the mapped files: the loader, the driver. */
function vulkanFiles(mapped: string[]): { loader: string; drivers: string } {
  const base = (path: string) => path.slice(path.lastIndexOf('/') + 1)
  const loader = mapped.filter((path) => /^libvulkan\.so/.test(base(path)))
  const drivers = mapped.filter((path) =>
    /^(libvulkan_|libGLX_nvidia|libnvidia-|libGLdispatch|libamdvlk|libvulkan-)/.test(base(path)),
  )
  return { loader: loader.join(', ') || 'none loaded', drivers: drivers.join(', ') || 'none loaded' }
}

const environment: Part = async ({ kitDir, workDir }) => {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)
    ?.header
  const cpu = cpus()
  return {
    figures: {
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      kernel: release(),
      glibc: header?.glibcVersionRuntime ?? 'unknown',
      cpu: cpu[0]?.model ?? 'unknown',
      cores: cpu.length,
      memoryGiB: round(totalmem() / 2 ** 30, 1),
      nvidiaSmi: await nvidiaSmi(),
      // What run.sh decided about the Vulkan loader and driver (see run.sh).
      vulkanLibsFromKit: process.env.R2B_KIT_LINKED_LIBS || 'none (the machine has them)',
      vulkanDriverFiles: process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES ?? 'loader default',
      vulkanNote: process.env.R2B_KIT_VULKAN_NOTE ?? '',
      python: process.env.R2B_PYTHON || 'none found',
    },
    paths: { ...basePaths(), kit: kitDir, work: workDir },
  }
}

interface WebGpuNavigator {
  gpu: GPU
}

/**
 * The adapter Dawn offers (Vulkan on Linux), the device's limits, the loader and driver it loaded, and one
 * tfjs-webgpu matmul as a first throughput figure.
 */
const adapter: Part = async ({ sizes, dry, progress }) => {
  const report = await initBackend('webgpu')
  const info = report.adapter
  if (!info) throw new Error('the webgpu backend started without an adapter report')
  const gpu = (globalThis as unknown as { navigator: WebGpuNavigator }).navigator.gpu
  const gpuAdapter = await gpu.requestAdapter({ powerPreference: 'high-performance' })
  const figures: Figures = {
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    isSoftware: String(info.isSoftware),
    tfjs: report.tfjsVersion,
  }
  if (gpuAdapter) {
    const limits = gpuAdapter.limits
    figures.maxBufferSizeMiB = round(limits.maxBufferSize / 2 ** 20, 0)
    figures.maxStorageBufferBindingSizeMiB = round(limits.maxStorageBufferBindingSize / 2 ** 20, 0)
    figures.maxComputeInvocationsPerWorkgroup = limits.maxComputeInvocationsPerWorkgroup
    figures.maxComputeWorkgroupStorageSize = limits.maxComputeWorkgroupStorageSize
    figures.features = [...gpuAdapter.features].sort().join(' ')
  }
  const mapped = mappedFiles()
  const vulkan = vulkanFiles(mapped)
  figures.vulkanLoader = vulkan.loader
  figures.vulkanDriver = vulkan.drivers
  const paths = { ...basePaths(), ...webgpuPaths(mapped) }
  progress({ figures, paths, mapped })
  // On a software adapter a real run's matmul would take minutes: the dry run's size says enough there.
  const { n, rounds } = info.isSoftware && !dry ? { n: 256, rounds: 3 } : sizes.matmul
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1)
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2)
  const once = async () => {
    const t0 = globalThis.performance.now()
    const sum = tf.tidy(() => tf.sum(tf.matMul(a, b)))
    await sum.data()
    sum.dispose()
    return globalThis.performance.now() - t0
  }
  await once()
  await once()
  const times: number[] = []
  for (let i = 0; i < rounds; i++) times.push(await once())
  tf.dispose([a, b])
  const ms = median(times)
  figures.matmul = `${n}x${n} by ${n}x${n}, float32, median of ${rounds}`
  figures.matmul_ms = round(ms, 3)
  figures.matmul_gflops = round((2 * n ** 3) / (ms * 1e6), 1)
  releaseBackend()
  return { figures, paths }
}

/** Where the webgpu package and its Dawn addon came from. */
function webgpuPaths(mapped: string[]): Record<string, string> {
  return {
    webgpuModule: fileURLToPath(import.meta.resolve('webgpu')),
    dawnAddon: mapped.find((path) => path.endsWith('/dawn.node')) ?? 'not loaded',
  }
}

/** What the PyTorch engine says about itself, and where Python found the package and torch. */
const torchInfo: Part = async () => {
  const info = await torchEngineInfo()
  if (!info.available) throw new Error(info.reason ?? 'the PyTorch engine is not available')
  const python = pythonCommand()
  const script = [
    'import json, sys, r2b_torch, torch, numpy',
    'cuda = torch.cuda.is_available()',
    'print(json.dumps({"executable": sys.executable, "prefix": sys.prefix, "r2b_torch": r2b_torch.__file__,',
    ' "torch": torch.__file__, "numpy": numpy.__file__, "cuda": torch.version.cuda,',
    ' "cudnn": torch.backends.cudnn.version() if cuda else None,',
    ' "gpu": torch.cuda.get_device_name(0) if cuda else None}))',
  ].join('\n')
  const where = JSON.parse(
    (
      await promisify(execFile)(python, ['-c', script], {
        env: { ...process.env, PYTHONPATH: PYTHON_PACKAGE_SOURCE },
        timeout: 60_000,
        encoding: 'utf8',
      })
    ).stdout,
  ) as Record<string, string | number | null>
  return {
    figures: {
      python: info.python ?? 'unknown',
      torch: info.torch ?? 'unknown',
      cuda: String(where.cuda ?? 'none'),
      cudnn: String(where.cudnn ?? 'none'),
      gpu: String(where.gpu ?? 'none'),
      defaultDevice: info.defaultDevice ?? 'cpu',
      devices: info.devices.join('; '),
    },
    paths: {
      ...basePaths(),
      python: String(where.executable),
      pythonPrefix: String(where.prefix),
      torch: String(where.torch),
      numpy: String(where.numpy),
      r2bTorch: String(where.r2b_torch),
      enginePackageSource: PYTHON_PACKAGE_SOURCE,
    },
  }
}

/** `bench train` on a tfjs backend: the real ResNet-18 step and each R2B stage's, at each width. */
function tfjsTrain(backend: 'webgpu' | 'wasm'): Part {
  return async ({ sizes }) => {
    const report = await initBackend(backend)
    const options = backend === 'wasm' ? { ...sizes.train, ...sizes.cpuSteps } : sizes.train
    const figures: Figures = await benchTrain(options)
    figures.adapter = report.adapter?.description ?? 'none'
    figures.reason = report.reason
    const paths = { ...basePaths(), ...(backend === 'webgpu' ? webgpuPaths(mappedFiles()) : {}) }
    if (backend === 'wasm') paths.wasmBinaries = process.env.R2B_WASM_DIR ?? 'next to the package'
    releaseBackend()
    return { figures, paths }
  }
}

/** `bench train`'s PyTorch side: the same widths, batch and input through `python -m r2b_torch bench-step`. */
const torchTrain: Part = async ({ sizes, progress }) => {
  const info = await torchEngineInfo()
  if (!info.available) throw new Error(info.reason ?? 'the PyTorch engine is not available')
  const figures: Figures = { torch: info.torch ?? 'unknown', device: info.defaultDevice ?? 'cpu' }
  const paths = { ...basePaths(), enginePackageSource: PYTHON_PACKAGE_SOURCE }
  const { widths, batch, input, channels } = sizes.train
  for (const width of widths) {
    const result = await benchTorchStep({ width, batch, input, channels, steps: sizes.torchSteps })
    const ms = (kind: string) => round(result.timings[kind]?.medianMs ?? Number.NaN)
    const w = `w${width}_`
    figures.device = result.device
    figures.threads = result.threads ?? 'default'
    figures[`${w}torch_resnet18_step_ms`] = ms('teacher')
    figures[`${w}plain_pytorch_step_ms`] = ms('plain')
    figures[`${w}torch_vs_plain_ratio`] = result.ratios['teacher/plain'] ?? Number.NaN
    for (const stage of ['tanh', 'ban', 'bnn']) {
      figures[`${w}torch_${stage}_step_ms`] = ms(stage)
      figures[`${w}torch_${stage}_ratio`] = result.ratios[`${stage}/teacher`] ?? Number.NaN
    }
    progress({ figures, paths, mapped: [] })
  }
  return { figures, paths }
}

/**
 * `bench deploy` on a backend: the packed XNOR-popcount conv and model against tfjs's float ones (WGSL
 * kernels on webgpu; on wasm the kit's prebuilt WebAssembly SIMD kernels, and this CPU's popcount bound).
 */
function deploy(backend: 'webgpu' | 'wasm'): Part {
  return async ({ sizes }) => {
    await initBackend(backend)
    const figures = await benchDeploy(sizes.deploy)
    const paths: Record<string, string> = { ...basePaths() }
    if (backend === 'webgpu') Object.assign(paths, webgpuPaths(mappedFiles()))
    else {
      paths.wasmBinaries = process.env.R2B_WASM_DIR ?? 'next to the package'
      paths.deployWasm = process.env.R2B_DEPLOY_WASM ?? 'compiled from source'
    }
    releaseBackend()
    return { figures, paths }
  }
}

/**
 * A short run of the quick preset (the R2B chain: teacher → tanh → ban → bnn) on one engine, through the
 * workbench's own trainer and run folder: the kit's Fashion-MNIST subset is imported into a fresh data dir,
 * the run created and trained as `train --preset quick` does. Figures per stage: seconds, test top-1,
 * median images per second.
 */
function quickRun(engine: 'tfjs' | 'torch'): Part {
  return async ({ sizes, kitDir, workDir, progress }) => {
    const home = join(workDir, `home-${engine}`)
    const source = join(kitDir, 'data', 'fashion-mnist-subset')
    const { manifest } = await importDataset(source, { home, name: 'kit-fashion', format: 'idx' })
    const store = new RunStore(home)
    const run = await createRun(store, {
      dataset: manifest.id,
      preset: 'quick',
      pipeline: 'r2b',
      engine,
      set: sizes.quick,
      name: `gpu kit: quick preset on ${engine}`,
    })
    // The tfjs worker is this bundle again, in the worker role (see kit.ts), trained on WebGPU.
    const trainer = new Trainer(store, () =>
      launchWorkerProcess({
        entry: bundlePath(),
        env: { ...process.env, R2B_KIT_ROLE: 'worker', R2B_BACKEND: 'webgpu' },
      }),
    )
    const figures: Figures = { engine, runId: run.id }
    const paths: Record<string, string> = {
      ...basePaths(),
      dataset: source,
      ...(engine === 'torch' ? { enginePackageSource: PYTHON_PACKAGE_SOURCE } : {}),
    }
    const rates = new Map<string, number[]>()
    const started = globalThis.performance.now()
    const off = trainer.on((event) => {
      if (event.type !== 'record') return
      const record = event.record
      if (record.kind === 'step') {
        const step = record as StepRecord
        const list = rates.get(step.stage) ?? []
        list.push(step.imagesPerSecond)
        rates.set(step.stage, list)
      } else if (record.kind === 'stage-end') {
        figures[`${record.stage}_s`] = round(record.seconds, 1)
        figures[`${record.stage}_test_top1`] = record.test ? round(record.test.top1, 4) : 'none'
        figures[`${record.stage}_images_per_s`] = round(median(rates.get(record.stage) ?? []), 1)
        figures[`${record.stage}_steps`] = rates.get(record.stage)?.length ?? 0
        figures.wall_s = round((globalThis.performance.now() - started) / 1000, 1)
        progress({ figures, paths, mapped: [] })
      }
    })
    try {
      await trainer.reconcile()
      const done = await (await trainer.enqueue(run.id)).done
      figures.status = done.status
      if (done.error) figures.error = done.error
      figures.wall_s = round((globalThis.performance.now() - started) / 1000, 1)
      figures.device = done.environment.device
        ? `${done.environment.device.kind}: ${done.environment.device.description}`
        : 'unknown'
      figures.stages = done.stages.map((stage) => stage.name).join(' ')
      if (done.status !== 'finished') {
        progress({ figures, paths, mapped: [] })
        throw new Error(`the run ended ${done.status}${done.error ? `: ${done.error}` : ''}`)
      }
      return { figures, paths }
    } finally {
      off()
      await trainer.shutdown()
    }
  }
}

export const parts: Record<string, Part> = {
  environment,
  adapter,
  'torch-info': torchInfo,
  'train-webgpu': tfjsTrain('webgpu'),
  'train-torch': torchTrain,
  'deploy-webgpu': deploy('webgpu'),
  'quick-tfjs': quickRun('tfjs'),
  'quick-torch': quickRun('torch'),
  'train-wasm': tfjsTrain('wasm'),
  'deploy-wasm': deploy('wasm'),
}

/** Runs one part in this process and returns what it found, with the files mapped into the process. */
export async function runPart(name: string, context: PartContext): Promise<PartResult> {
  const part = parts[name]
  if (!part) throw new Error(`no part "${name}" (parts: ${Object.keys(parts).join(', ')})`)
  const result = await part(context)
  return { ...result, mapped: mappedFiles() }
}
