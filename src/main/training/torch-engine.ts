/**
 * The PyTorch engine (python/, package `r2b_torch`) as the workbench drives it: found and described
 * (`python -m r2b_torch info`), and started as a process that trains one run folder by docs/run-format.md.
 * The engine writes the folder itself; main follows it (RunFollower) and announces what appears, as it does
 * for a tfjs worker's records. Stop and pause go through the folder's request files.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { delimiter, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { z } from 'zod'
import type { TorchEngineReport } from '../../shared/backend'
import type { DataParallel } from '../../shared/runs'
import { RunFollower, type Followed } from '../runs/follower'
import type { RunStore } from '../runs/run-store'
import { PAUSE_REQUEST, requestStop } from './requests'
import type { Outcome, TrainingSession } from './session'

/** The repository's python/ folder, next to src/ (the package is imported from python/src). */
const REPO = fileURLToPath(new URL('../../..', import.meta.url))
export const PYTHON_PACKAGE_SOURCE = join(REPO, 'python', 'src')

/** The Python to run: `R2B_PYTHON`, else the repository's `.venv` (what `npm test` sets up), else `python3`. */
export function pythonCommand(env: NodeJS.ProcessEnv = process.env): string {
  if (env.R2B_PYTHON) return env.R2B_PYTHON
  const venv =
    process.platform === 'win32'
      ? join(REPO, '.venv', 'Scripts', 'python.exe')
      : join(REPO, '.venv', 'bin', 'python')
  return existsSync(venv) ? venv : process.platform === 'win32' ? 'python' : 'python3'
}

function pythonEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const path = env.PYTHONPATH
    ? `${PYTHON_PACKAGE_SOURCE}${delimiter}${env.PYTHONPATH}`
    : PYTHON_PACKAGE_SOURCE
  return { ...env, PYTHONPATH: path, PYTHONUNBUFFERED: '1' }
}

/** What `python -m r2b_torch info` prints (python/src/r2b_torch/cli.py). */
const InfoOutput = z.object({
  python: z.object({ version: z.string(), executable: z.string() }),
  torch: z
    .object({ version: z.string(), cuda: z.string().nullable(), cudaAvailable: z.boolean() })
    .nullable(),
  devices: z.array(z.looseObject({ kind: z.string(), name: z.string().optional() })),
  defaultDevice: z.string().nullable(),
  canTrain: z.boolean(),
  why: z.string().nullable(),
})

const ENABLE =
  'set it up with `bash scripts/setup-python.sh` (a .venv with PyTorch), or point R2B_PYTHON at a Python that has torch>=2.1 and numpy'

/** Runs a short command of the engine and returns its stdout (one-line errors as rejections). */
function runEngine(args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const python = pythonCommand()
    const child = spawn(python, ['-m', 'r2b_torch', ...args], {
      env: pythonEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.stdout.on('data', (d) => (stdout += String(d)))
    child.stderr.on('data', (d) => (stderr += String(d)))
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      reject(new Error(error.code === 'ENOENT' ? `no Python at "${python}"` : error.message))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      if (code === 0) resolve(stdout)
      else
        reject(
          new Error(stderr.trim().split('\n').at(-1) || `${python} -m r2b_torch ended (${signal ?? code})`),
        )
    })
  })
}

let cachedInfo: Promise<TorchEngineReport> | null = null

/** Whether the PyTorch engine can train here, on what, and if not why; asked once per process. */
export function torchEngineInfo(): Promise<TorchEngineReport> {
  cachedInfo ??= runEngine(['info'], 60_000).then(
    (stdout) => {
      const info = InfoOutput.parse(JSON.parse(stdout))
      const devices = info.devices.map((d) => (d.name ? `${d.kind}: ${d.name}` : d.kind))
      return {
        available: info.canTrain,
        reason: info.canTrain ? null : `${info.why ?? 'PyTorch cannot train here'}; ${ENABLE}`,
        python: `${info.python.version} (${info.python.executable})`,
        torch: info.torch?.version ?? null,
        devices,
        defaultDevice: info.defaultDevice,
      }
    },
    (error: unknown) => ({
      available: false,
      reason: `the PyTorch engine is not available: ${(error as Error).message}; ${ENABLE}`,
      python: null,
      torch: null,
      devices: [],
      defaultDevice: null,
    }),
  )
  return cachedInfo
}

export interface TorchSessionStart {
  store: RunStore
  runId: string
  /** This process, which holds the training lock for the run. */
  lockHolder: number
  device?: string
  /** More than one process: DDP under torchrun on this machine. */
  dataParallel?: DataParallel
  /** What the engine wrote, as it appears on disk. */
  followed(change: Followed): void
  /** A line the engine printed (progress, warnings), for the caller to show or drop. */
  output?(line: string): void
}

/**
 * Trains a run in the PyTorch engine. The outcome is what the engine wrote into run.json before it exited;
 * an engine that ended without saying (killed, out of memory) leaves the run interrupted.
 */
export async function startTorchSession(start: TorchSessionStart): Promise<TrainingSession> {
  const { store, runId } = start
  const dir = store.dir(runId)
  // What the folder holds now the caller knows already: only what the engine appends is announced.
  const follower = await new RunFollower(store, runId, start.followed, (error) =>
    start.output?.(`warning: ${error.message}`),
  ).start({ fromEnd: true })
  const train = [
    'train',
    '--run-dir',
    dir,
    '--data-home',
    store.home,
    '--lock-held-by',
    String(start.lockHolder),
  ]
  if (start.device) train.push('--device', start.device)
  const parallel = start.dataParallel
  if (parallel?.syncBatchNorm) train.push('--sync-batchnorm')
  const args = parallel
    ? [...torchrunArgs({ nodes: 1, processesPerNode: parallel.processes }), ...train]
    : ['-m', 'r2b_torch', ...train]
  // Its own process group, so that ending it ends every rank torchrun started, and the terminal's Ctrl+C
  // reaches this process alone, which turns it into a stop request all ranks see at the same step.
  const group = process.platform !== 'win32'
  const child = spawn(pythonCommand(), args, {
    env: pythonEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: group,
  })
  let lastLine = ''
  // The engine's closing line on stdout (rank 0's under torchrun, whose own exit code is 1 whatever the
  // reason): a refusal says why there, before torchrun's summary buries it.
  let refusal: string | null = null
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      if (line.trim()) lastLine = line.trim()
      if (stream === child.stdout && line.startsWith('{')) {
        const end = EndLine.safeParse(parseJson(line))
        if (end.success && end.data.status === 'refused') refusal = end.data.error
      }
      start.output?.(line)
    })
  }
  const ended = new Promise<Outcome>((resolve) => {
    let spawnError: string | null = null
    child.on('error', (error) => (spawnError = `the PyTorch engine could not start: ${error.message}`))
    child.on('close', (code, signal) => {
      void follower.stop().then(async () => {
        if (spawnError) return resolve({ status: 'failed', error: spawnError })
        const run = await store.read(runId).catch(() => null)
        const said = run?.status
        if (said === 'finished' || said === 'stopped' || said === 'failed')
          return resolve({ status: said, error: run?.error ?? null })
        // A rank died and rank 0 said so (which process, how) before torchrun ended the rest.
        if (said === 'interrupted' && run?.error) return resolve({ status: said, error: run.error })
        const why = signal ? `was killed (${signal})` : `exited with code ${code}`
        // Refused before it began (exit 2): nothing was trained, and the engine said why.
        if (refusal !== null) return resolve({ status: 'failed', error: refusal })
        if (code === 2) return resolve({ status: 'failed', error: lastLine || `the PyTorch engine ${why}` })
        resolve({
          status: 'interrupted',
          error: `the PyTorch engine ${why}${lastLine ? ` (${lastLine})` : ''}`,
        })
      })
    })
  })
  return {
    stop: () => void requestStop(store, runId).catch(() => {}),
    pause: () => void writeFile(join(dir, PAUSE_REQUEST), new Date().toISOString()).catch(() => {}),
    resume: () => void rm(join(dir, PAUSE_REQUEST), { force: true }),
    kill: () => {
      if (!group || child.pid === undefined) return void child.kill('SIGKILL')
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {
        // Already gone.
      }
    },
    ended,
  }
}

/** The line the engine ends with on stdout: `{"run", "status", "error"}`. */
const EndLine = z.object({ run: z.string().nullable(), status: z.string(), error: z.string() })

function parseJson(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch {
    return null
  }
}

/**
 * `python -m torch.distributed.run` (torchrun) for the engine: one node on its own (`--standalone`: a free
 * local port, no rendezvous server), or one of `nodes` meeting at a rendezvous endpoint (`launch`).
 */
export function torchrunArgs(options: {
  nodes: number
  processesPerNode: number | string
  rendezvous?: { endpoint: string; id: string }
}): string[] {
  const where =
    options.nodes === 1 && !options.rendezvous
      ? ['--standalone', '--nnodes', '1']
      : [
          '--nnodes',
          String(options.nodes),
          '--rdzv-backend',
          'c10d',
          '--rdzv-endpoint',
          options.rendezvous?.endpoint ?? 'localhost:29500',
          '--rdzv-id',
          options.rendezvous?.id ?? 'r2b',
        ]
  return [
    '-m',
    'torch.distributed.run',
    ...where,
    '--nproc-per-node',
    String(options.processesPerNode),
    // A rank that fails ends the job: the run resumes from its last checkpoint, never from a torn epoch.
    '--max-restarts',
    '0',
    '--module',
    'r2b_torch',
  ]
}

const BenchStep = z.object({
  device: z.string(),
  threads: z.number().nullable(),
  torch: z.string(),
  timings: z.record(z.string(), z.object({ medianMs: z.number(), imagesPerSecond: z.number() })),
  ratios: z.record(z.string(), z.number()),
})
export type TorchBenchStep = z.infer<typeof BenchStep>

/**
 * The PyTorch engine's step times for one width (`python -m r2b_torch bench-step --plain`): its real
 * ResNet-18 step, each R2B stage's, and a plain PyTorch ResNet-18 step with none of the engine's machinery.
 */
export async function benchTorchStep(options: {
  width: number
  batch: number
  input: number
  channels: 1 | 3
  steps: number
}): Promise<TorchBenchStep> {
  const args = ['bench-step', '--plain', '--width', String(options.width), '--batch', String(options.batch)]
  args.push(
    '--input',
    String(options.input),
    '--channels',
    String(options.channels),
    '--steps',
    String(options.steps),
  )
  return BenchStep.parse(JSON.parse(await runEngine(args, 600_000)))
}

const BenchDdp = z.object({
  device: z.string(),
  backend: z.string(),
  stage: z.string(),
  batch: z.number(),
  runs: z.array(
    z.object({
      processes: z.number(),
      imagesPerSecond: z.number(),
      medianMs: z.number(),
      efficiency: z.number().nullable(),
    }),
  ),
})
export type TorchBenchDdp = z.infer<typeof BenchDdp>

/**
 * Data-parallel scaling on this machine (`python -m r2b_torch bench-ddp`): images per second of one stage's
 * training steps on the same global batch in each process count under torchrun, and the efficiency
 * ips(K) / (K · ips(1)).
 */
export async function benchTorchDdp(options: {
  processes: number[]
  width: number
  batch: number
  steps: number
}): Promise<TorchBenchDdp> {
  const args = ['bench-ddp', '--json', '--nproc', options.processes.join(',')]
  args.push(
    '--width',
    String(options.width),
    '--batch',
    String(options.batch),
    '--steps',
    String(options.steps),
  )
  return BenchDdp.parse(JSON.parse(await runEngine(args, 1_200_000)))
}
