/**
 * `run`: every part of the kit in turn, each in a process of its own with its own time limit, inside one time
 * budget; one JSON (results.json) and one human-readable summary (summary.md) in the output folder, rewritten
 * after each part. A part that fails, hangs or crashes reports its own error; the run as a whole never fails.
 */
import { spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Figures, PartResult } from './parts'
import { DRY, REAL, withOverrides, type KitSizes } from './sizes'
import { summary } from './summary'

export interface RunOptions {
  dry: boolean
  out: string
  /** Seconds for the whole run; parts that would start past it are skipped, a running one is cut off. */
  budgetS: number
  widths?: number[]
  batch?: number
  /** Only these parts (for a second try of one part). */
  only?: string[]
}

interface PartSpec {
  name: string
  title: string
  /** Time limit in seconds: [real run, dry run]. */
  limitS: [number, number]
  /** The figures the part must produce at these sizes (a missing or non-finite one is reported). */
  expected(sizes: KitSizes): string[]
}

const perWidth = (sizes: KitSizes, keys: string[]) =>
  sizes.train.widths.flatMap((w) => keys.map((key) => `w${w}_${key}`))
const QUICK_STAGES = ['teacher', 'tanh', 'ban', 'bnn']
const DEFAULT_CONV_SHAPES: [number, number][] = [
  [56, 64],
  [28, 128],
  [14, 256],
  [7, 512],
]

/** The parts in the order they run: the figures that matter most first, the CPU reference last. */
export const PART_SPECS: PartSpec[] = [
  {
    name: 'environment',
    title: 'The machine',
    limitS: [30, 30],
    expected: () => ['node', 'glibc', 'cores', 'nvidiaSmi'],
  },
  {
    name: 'adapter',
    title: 'The WebGPU adapter (Dawn on Vulkan) and a matmul on it',
    limitS: [90, 120],
    expected: () => ['description', 'isSoftware', 'vulkanLoader', 'vulkanDriver', 'matmul_gflops'],
  },
  {
    name: 'torch-info',
    title: 'The PyTorch engine',
    limitS: [60, 60],
    expected: () => ['torch', 'defaultDevice'],
  },
  {
    name: 'train-webgpu',
    title: '`bench train` on tfjs-webgpu',
    limitS: [180, 240],
    expected: (s) =>
      perWidth(s, [
        'resnet18_step_ms',
        'tanh_step_ms',
        'ban_step_ms',
        'bnn_step_ms',
        'bnn_ratio',
        'max_ratio',
      ]),
  },
  {
    name: 'train-torch',
    title: '`bench train` on the PyTorch engine',
    limitS: [150, 150],
    expected: (s) =>
      perWidth(s, [
        'torch_resnet18_step_ms',
        'plain_pytorch_step_ms',
        'torch_bnn_step_ms',
        'torch_bnn_ratio',
      ]),
  },
  {
    name: 'deploy-webgpu',
    title: 'The packed binary conv against the float conv on WebGPU (`bench deploy`)',
    limitS: [120, 180],
    expected: (s) => [
      ...(s.deploy.convShapes ?? DEFAULT_CONV_SHAPES).flatMap(([size, c]) =>
        ['packed_ms', 'float_ms', 'speedup'].map((k) => `conv_${size}x${size}x${c}_${k}`),
      ),
      'binaryConvSpeedup',
      'modelSpeedup',
      'exportBytes',
    ],
  },
  {
    name: 'quick-tfjs',
    title: 'A short quick-preset run on the tfjs engine (WebGPU)',
    limitS: [180, 300],
    expected: () => ['status', 'wall_s', ...QUICK_STAGES.flatMap((st) => [`${st}_s`, `${st}_test_top1`])],
  },
  {
    name: 'quick-torch',
    title: 'A short quick-preset run on the PyTorch engine',
    limitS: [120, 180],
    expected: () => ['status', 'wall_s', ...QUICK_STAGES.flatMap((st) => [`${st}_s`, `${st}_test_top1`])],
  },
  {
    name: 'train-wasm',
    title: '`bench train` on tfjs-wasm: the CPU reference on this machine',
    limitS: [120, 150],
    expected: (s) => perWidth(s, ['resnet18_step_ms', 'bnn_step_ms', 'max_ratio']),
  },
  {
    name: 'deploy-wasm',
    title: '`bench deploy` on tfjs-wasm: the CPU reference for the packed conv',
    limitS: [90, 120],
    expected: () => ['binaryConvSpeedup', 'binaryConvBound', 'modelSpeedup'],
  },
]

export interface PartOutcome {
  title: string
  ok: boolean
  seconds: number
  error: string | null
  figures: Figures
  paths: Record<string, string>
  /** Files mapped into the part's process that are not the kit's (the machine's libraries and driver). */
  machineFiles: string[]
  log: string
}

export interface KitResults {
  kit: Record<string, unknown>
  mode: 'real' | 'dry'
  startedAt: string
  seconds: number
  budgetS: number
  sizes: KitSizes
  parts: Record<string, PartOutcome>
  /** The figures side by side: engines at the same width, the packed conv, the quick runs. */
  comparison: Figures
  /** `part: figure` for every expected figure that is missing (a failed part's figures included). */
  missing: string[]
  provenance: {
    kitDir: string
    workDir: string
    /** What must come from the kit, by part and name, and where it came from. */
    fromKit: Record<string, string>
    /** What the kit takes from the machine (Python and torch, the GPU driver, the C library). */
    fromMachine: Record<string, string>
    /** Anything of the first kind that came from elsewhere: empty when the kit is self-contained. */
    outsideKit: string[]
  }
}

/** Paths every part must take from the kit (or from the work folder it unpacked into). */
const KIT_PATHS = [
  'node',
  'bundle',
  'webgpuModule',
  'dawnAddon',
  'wasmBinaries',
  'deployWasm',
  'dataset',
  'r2bTorch',
  'enginePackageSource',
]
const MACHINE_PATHS = ['python', 'pythonPrefix', 'torch', 'numpy']

const isInside = (path: string, dir: string) => {
  const rel = relative(dir, path)
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'))
}

function readKitManifest(kitDir: string): Record<string, unknown> {
  try {
    const manifest = JSON.parse(readFileSync(join(kitDir, 'kit.json'), 'utf8')) as Record<string, unknown>
    delete manifest.files
    return manifest
  } catch (error) {
    return { error: `kit.json: ${(error as Error).message}` }
  }
}

function lastLines(file: string, count: number): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-count).join(' | ')
  } catch {
    return ''
  }
}

interface PartFile extends Partial<PartResult> {
  error?: string | null
}

/** Runs one part in a child process (its own process group, killed whole at the limit). */
function runPartProcess(
  spec: PartSpec,
  options: RunOptions,
  limitS: number,
  dirs: { kitDir: string; workDir: string; logs: string },
): Promise<PartOutcome> {
  const resultFile = join(dirs.workDir, `part-${spec.name}.json`)
  const log = join(dirs.logs, `${spec.name}.log`)
  rmSync(resultFile, { force: true })
  const args = [fileURLToPath(import.meta.url), 'part', spec.name, '--result', resultFile]
  if (options.dry) args.push('--dry')
  if (options.widths?.length) args.push('--widths', options.widths.join(','))
  if (options.batch) args.push('--batch', String(options.batch))
  const fd = openSync(log, 'w')
  const started = globalThis.performance.now()
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', fd, fd], detached: true })
    let timedOut = false
    const killGroup = () => {
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }
    // The part leads a process group of its own (its workers and Python with it): a Ctrl+C here ends it too.
    const interrupted = () => {
      killGroup()
      process.exit(130)
    }
    process.once('SIGINT', interrupted)
    process.once('SIGTERM', interrupted)
    const timer = setTimeout(() => {
      timedOut = true
      killGroup()
    }, limitS * 1000)
    let finished = false
    const finish = (code: number | null, signal: string | null, spawnError?: Error) => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      process.off('SIGINT', interrupted)
      process.off('SIGTERM', interrupted)
      closeSync(fd)
      // Whatever the part left behind: a whole result, or what it had when it failed or was cut off.
      let file: PartFile = {}
      try {
        file = JSON.parse(readFileSync(resultFile, 'utf8')) as PartFile
      } catch {
        // nothing written
      }
      let error = file.error ?? null
      if (timedOut) error = `cut off at its time limit of ${limitS} s${error ? ` (${error})` : ''}`
      else if (spawnError) error = `could not start: ${spawnError.message}`
      else if (code !== 0 && !error) {
        const tail = lastLines(log, 3)
        error = `the part's process ended (${signal ?? `code ${code}`}) without a result${tail ? `: ${tail}` : ''}`
      }
      const mapped = file.mapped ?? []
      done({
        title: spec.title,
        ok: error === null,
        seconds: Number(((globalThis.performance.now() - started) / 1000).toFixed(1)),
        error,
        figures: file.figures ?? {},
        paths: file.paths ?? {},
        machineFiles: mapped.filter((p) => !isInside(p, dirs.kitDir) && !isInside(p, dirs.workDir)),
        log: relative(options.out, log),
      })
    }
    child.on('error', (error) => finish(null, null, error))
    child.on('exit', (code, signal) => finish(code, signal))
  })
}

const num = (value: unknown): number | null =>
  typeof value === 'number' && Number.isFinite(value) ? value : null

const ratio = (a: unknown, b: unknown): number | string => {
  const x = num(a)
  const y = num(b)
  return x !== null && y !== null && y > 0 ? Number((x / y).toFixed(2)) : 'n/a'
}

/** The headline figures: each engine at the same width, the packed conv, the quick runs. */
function compare(parts: Record<string, PartOutcome>, sizes: KitSizes): Figures {
  const f = (part: string, key: string) => parts[part]?.figures[key]
  const out: Figures = {
    adapter: String(f('adapter', 'description') ?? 'n/a'),
    adapterIsSoftware: String(f('adapter', 'isSoftware') ?? 'n/a'),
    torchDevice: String(f('train-torch', 'device') ?? f('torch-info', 'defaultDevice') ?? 'n/a'),
  }
  for (const w of sizes.train.widths) {
    const key = `w${w}_`
    out[`${key}webgpu_resnet18_step_ms`] = f('train-webgpu', `${key}resnet18_step_ms`) ?? 'n/a'
    out[`${key}torch_resnet18_step_ms`] = f('train-torch', `${key}torch_resnet18_step_ms`) ?? 'n/a'
    out[`${key}wasm_resnet18_step_ms`] = f('train-wasm', `${key}resnet18_step_ms`) ?? 'n/a'
    // How many times faster the PyTorch engine takes a real step than tfjs-webgpu, on this machine.
    out[`${key}torch_speedup_over_webgpu`] = ratio(
      f('train-webgpu', `${key}resnet18_step_ms`),
      f('train-torch', `${key}torch_resnet18_step_ms`),
    )
    // How many times faster tfjs-webgpu trains than tfjs-wasm (the CPU) on this machine.
    out[`${key}webgpu_speedup_over_wasm`] = ratio(
      f('train-wasm', `${key}resnet18_step_ms`),
      f('train-webgpu', `${key}resnet18_step_ms`),
    )
    out[`${key}webgpu_max_stage_ratio`] = f('train-webgpu', `${key}max_ratio`) ?? 'n/a'
    out[`${key}torch_bnn_ratio`] = f('train-torch', `${key}torch_bnn_ratio`) ?? 'n/a'
  }
  out.webgpu_binaryConvSpeedup = f('deploy-webgpu', 'binaryConvSpeedup') ?? 'n/a'
  out.webgpu_modelSpeedup = f('deploy-webgpu', 'modelSpeedup') ?? 'n/a'
  out.wasm_binaryConvSpeedup = f('deploy-wasm', 'binaryConvSpeedup') ?? 'n/a'
  out.wasm_binaryConvBound = f('deploy-wasm', 'binaryConvBound') ?? 'n/a'
  for (const engine of ['tfjs', 'torch']) {
    out[`quick_${engine}_wall_s`] = f(`quick-${engine}`, 'wall_s') ?? 'n/a'
    out[`quick_${engine}_bnn_test_top1`] = f(`quick-${engine}`, 'bnn_test_top1') ?? 'n/a'
  }
  return out
}

function provenance(parts: Record<string, PartOutcome>, kitDir: string, workDir: string) {
  const fromKit: Record<string, string> = {}
  const fromMachine: Record<string, string> = {}
  const outsideKit: string[] = []
  for (const [name, part] of Object.entries(parts)) {
    for (const [what, path] of Object.entries(part.paths)) {
      if (!path.startsWith('/')) continue
      if (KIT_PATHS.includes(what)) {
        fromKit[`${name}.${what}`] = path
        if (!isInside(path, kitDir) && !isInside(path, workDir)) outsideKit.push(`${name}.${what}: ${path}`)
      } else if (MACHINE_PATHS.includes(what)) fromMachine[what] = path
    }
  }
  // The Vulkan loader is the kit's where the machine has none (run.sh), the driver always the machine's.
  for (const key of ['vulkanLoader', 'vulkanDriver']) {
    const paths = String(parts.adapter?.figures[key] ?? 'n/a')
    const inKit = paths.split(', ').every((p) => isInside(p, kitDir) || isInside(p, workDir))
    if (paths.startsWith('/') && inKit) fromKit[`adapter.${key}`] = paths
    else fromMachine[key] = paths
  }
  const machineFiles = new Set(Object.values(parts).flatMap((part) => part.machineFiles))
  fromMachine.mappedFiles = [...machineFiles].sort().join(', ')
  return { kitDir, workDir, fromKit, fromMachine, outsideKit }
}

/** The parts that measure WebGPU: at real sizes they are worth running on a hardware adapter only. */
const WEBGPU_PARTS = ['train-webgpu', 'deploy-webgpu', 'quick-tfjs']

/**
 * Why a real run skips the WebGPU parts, or null: no adapter at all, or only a software one (lavapipe at real
 * sizes would spend the whole slot on a few figures nobody needs; `--dry` measures on it at small sizes).
 */
function noHardwareAdapter(adapter: PartOutcome | undefined, dry: boolean): string | null {
  if (dry || !adapter) return null
  const software = adapter.figures.isSoftware
  if (software === undefined) return `WebGPU has no adapter here (${adapter.error ?? 'none reported'})`
  if (software !== 'false')
    return `the only WebGPU adapter is a software one (${adapter.figures.description}): no Vulkan driver for the GPU was found (see the environment part's vulkanNote)`
  return null
}

function writeAtomically(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

export async function runKit(options: RunOptions): Promise<KitResults> {
  const kitDir = resolve(process.env.R2B_KIT_DIR ?? join(fileURLToPath(import.meta.url), '..', '..'))
  const workDir = resolve(process.env.R2B_KIT_WORK ?? join(options.out, 'work'))
  const sizes = withOverrides(options.dry ? DRY : REAL, options.widths, options.batch)
  const logs = join(options.out, 'logs')
  mkdirSync(logs, { recursive: true })
  mkdirSync(workDir, { recursive: true })
  const started = globalThis.performance.now()
  const elapsed = () => (globalThis.performance.now() - started) / 1000
  const results: KitResults = {
    kit: readKitManifest(kitDir),
    mode: options.dry ? 'dry' : 'real',
    startedAt: new Date().toISOString(),
    seconds: 0,
    budgetS: options.budgetS,
    sizes,
    parts: {},
    comparison: {},
    missing: [],
    provenance: { kitDir, workDir, fromKit: {}, fromMachine: {}, outsideKit: [] },
  }
  const specs = PART_SPECS.filter((spec) => !options.only?.length || options.only.includes(spec.name))
  const save = () => {
    results.seconds = Number(elapsed().toFixed(1))
    results.comparison = compare(results.parts, sizes)
    results.provenance = provenance(results.parts, kitDir, workDir)
    results.missing = specs.flatMap((spec) =>
      spec
        .expected(sizes)
        .filter((key) => {
          const value = results.parts[spec.name]?.figures[key]
          return value === undefined || (typeof value === 'number' && !Number.isFinite(value))
        })
        .map((key) => `${spec.name}: ${key}`),
    )
    writeAtomically(join(options.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`)
    writeAtomically(join(options.out, 'summary.md'), summary(results))
  }
  const skip = (spec: PartSpec, why: string) => {
    results.parts[spec.name] = {
      title: spec.title,
      ok: false,
      seconds: 0,
      error: `skipped: ${why}`,
      figures: {},
      paths: {},
      machineFiles: [],
      log: '',
    }
    save()
  }
  for (const [index, spec] of specs.entries()) {
    const left = options.budgetS - elapsed()
    const limit = Math.min(spec.limitS[options.dry ? 1 : 0], Math.floor(left - 5))
    const tag = `[kit] ${index + 1}/${specs.length} ${spec.name}`
    const noGpu = WEBGPU_PARTS.includes(spec.name)
      ? noHardwareAdapter(results.parts.adapter, options.dry)
      : null
    if (noGpu) {
      process.stderr.write(`${tag}: skipped (${noGpu})\n`)
      skip(spec, noGpu)
      continue
    }
    if (limit < 10) {
      process.stderr.write(`${tag}: skipped (out of time)\n`)
      skip(spec, `the run's budget of ${options.budgetS} s was spent (${Math.round(elapsed())} s so far)`)
      continue
    }
    process.stderr.write(`${tag}: ${spec.title} (at most ${limit} s)\n`)
    const outcome = await runPartProcess(spec, options, limit, { kitDir, workDir, logs })
    results.parts[spec.name] = outcome
    process.stderr.write(
      `${tag}: ${outcome.ok ? 'ok' : `error: ${outcome.error}`} (${outcome.seconds} s, log ${outcome.log})\n`,
    )
    save()
  }
  save()
  return results
}

/** The part's side: run it, write its result (or its error and what it had), exit 0 or 1. */
export async function partMain(name: string, resultFile: string, sizes: KitSizes, dry: boolean) {
  const { runPart, oneLine } = await import('./parts')
  const kitDir = resolve(process.env.R2B_KIT_DIR ?? '.')
  const workDir = resolve(process.env.R2B_KIT_WORK ?? '.')
  const write = (value: PartFile) => writeAtomically(resultFile, JSON.stringify(value))
  try {
    const result = await runPart(name, { sizes, dry, kitDir, workDir, progress: (partial) => write(partial) })
    write({ ...result, error: null })
    return 0
  } catch (error) {
    let partial: PartFile = {}
    if (existsSync(resultFile)) {
      try {
        partial = JSON.parse(readFileSync(resultFile, 'utf8')) as PartFile
      } catch {
        // a torn write: nothing kept
      }
    }
    if (process.env.R2B_DEBUG) process.stderr.write(`${(error as Error).stack ?? String(error)}\n`)
    const { mappedFiles } = await import('./parts')
    write({ ...partial, mapped: mappedFiles(), error: oneLine(error) })
    return 1
  }
}
