import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { makeRunConfig, type RunConfig } from '../../../../src/shared/run-config'
import { describeDistributed } from '../../../../src/shared/runs'
import {
  checkDataParallel,
  checkProcessesFit,
  dataParallelOf,
} from '../../../../src/main/training/data-parallel'
import { launchJob, shellWord, type ClusterJob } from '../../../../src/main/training/launch'
import { RunStore } from '../../../../src/main/runs/run-store'
import { TrainingError } from '../../../../src/main/training/errors'

const torchConfig = (batch = 32): RunConfig => ({
  ...makeRunConfig({ set: [`stages.*.batchSize=${batch}`] }),
  engine: 'torch',
})

describe('data-parallel sessions', () => {
  it('refuses the tfjs engine and process counts that do not divide every stage batch', () => {
    expect(() => checkDataParallel(makeRunConfig(), { processes: 2, syncBatchNorm: false })).toThrow(
      /tfjs engine trains in one process/,
    )
    expect(() => checkDataParallel(torchConfig(32), { processes: 3, syncBatchNorm: false })).toThrow(
      /batch of 32, which 3 processes cannot share evenly/,
    )
    expect(() => checkDataParallel(torchConfig(32), { processes: 4, syncBatchNorm: true })).not.toThrow()
    // One process is no data parallelism: any engine, any batch.
    expect(() => checkDataParallel(makeRunConfig(), { processes: 1, syncBatchNorm: false })).not.toThrow()
  })

  it('resumes as the run last trained on one node, and in one process after a cluster job', async () => {
    const home = await mkdtemp(join(tmpdir(), 'r2b-dp-'))
    try {
      const store = new RunStore(home)
      const run = await store.create(torchConfig(32))
      expect(dataParallelOf(run, undefined)).toBeNull()
      const local = {
        ...run,
        environment: {
          ...run.environment,
          distributed: { worldSize: 2, nodes: 1, backend: 'gloo', perProcessBatch: 16, syncBatchNorm: true },
        },
      }
      expect(dataParallelOf(local, undefined)).toEqual({ processes: 2, syncBatchNorm: true })
      expect(dataParallelOf(local, { processes: 1, syncBatchNorm: false })).toBeNull()
      const cluster = {
        ...local,
        environment: {
          ...local.environment,
          distributed: { ...local.environment.distributed, nodes: 2, worldSize: 16 },
        },
      }
      expect(dataParallelOf(cluster, undefined)).toBeNull()
      expect(describeDistributed(local.environment.distributed)).toMatch(/2 processes/)
    } finally {
      await rm(home, { recursive: true, force: true })
    }
  })

  it('refuses more processes than GPUs, or than CPU cores', () => {
    const gpu = { available: true, defaultDevice: 'cuda', devices: ['cuda:0', 'cuda:1', 'cpu'] }
    const report = (r: object) => r as Parameters<typeof checkProcessesFit>[1]
    expect(() => checkProcessesFit({ processes: 2, syncBatchNorm: false }, report(gpu))).not.toThrow()
    expect(() => checkProcessesFit({ processes: 4, syncBatchNorm: false }, report(gpu))).toThrow(
      /4 processes, but this machine has 2 CUDA GPUs: use --nproc 2 or fewer/,
    )
    const cpu = { available: true, defaultDevice: 'cpu', devices: ['cpu'] }
    expect(() => checkProcessesFit({ processes: 100000, syncBatchNorm: false }, report(cpu))).toThrow(
      /CPU cores/,
    )
  })
})

describe('launch: a job folder for a cluster', () => {
  let home: string
  beforeEach(async () => {
    home = await mkdtemp(join(tmpdir(), 'r2b-launch-'))
  })
  afterEach(async () => {
    await rm(home, { recursive: true, force: true })
  })

  const job = (over: Partial<ClusterJob> = {}): ClusterJob => ({
    nodes: 2,
    processesPerNode: 8,
    gpus: true,
    cpusPerProcess: 8,
    syncBatchNorm: true,
    dataHome: '/shared/r2b data',
    port: 29511,
    slurm: { time: '2-00:00:00', partition: 'gpu' },
    ...over,
  })

  it('writes the run folder, a torchrun script per node and a Slurm script that parse, and attaches the run', async () => {
    const store = new RunStore(home)
    const launched = await launchJob(store, torchConfig(256), job(), { name: 'cluster run' })
    expect(launched.jobDir).toBe(join(home, 'jobs', launched.run.id))
    expect(launched.run.config.engine).toBe('torch')
    expect((await store.list()).runs.map((r) => r.id)).toContain(launched.run.id)

    const slurm = await readFile(launched.scripts.slurm!, 'utf8')
    for (const line of [
      '#SBATCH --nodes=2',
      '#SBATCH --ntasks-per-node=1',
      '#SBATCH --gpus-per-node=8',
      '#SBATCH --cpus-per-task=64',
      '#SBATCH --time=2-00:00:00',
      '#SBATCH --partition=gpu',
    ])
      expect(slurm).toContain(line)
    expect(slurm).toMatch(
      /srun --kill-on-bad-exit=1 "\$PYTHON" -m torch\.distributed\.run --nnodes 2 --rdzv-backend c10d --rdzv-endpoint "\$head:29511"/,
    )
    expect(slurm).toContain('--nproc-per-node 8')
    expect(slurm).toContain(`--data-home ${shellWord('/shared/r2b data')}`)
    expect(slurm).toContain('--sync-batchnorm')
    expect(slurm).not.toContain('--device cpu')
    execFileSync('bash', ['-n', launched.scripts.slurm!])

    const torchrun = await readFile(launched.scripts.torchrun, 'utf8')
    expect(torchrun).toContain('--rdzv-endpoint "$R2B_RDZV"')
    expect((await stat(launched.scripts.torchrun)).mode & 0o111).not.toBe(0)
    execFileSync('sh', ['-n', launched.scripts.torchrun])
    // Without the rendezvous it says what to set instead of starting.
    expect(() =>
      execFileSync('sh', [launched.scripts.torchrun], { stdio: 'pipe', env: { PATH: process.env.PATH } }),
    ).toThrow(/R2B_RDZV/)
  })

  it('CPU nodes run gloo processes on the CPU, and no Slurm script unless asked', async () => {
    const launched = await launchJob(
      new RunStore(home),
      torchConfig(32),
      job({ gpus: false, processesPerNode: 2, nodes: 1, slurm: null }),
      {},
    )
    expect(launched.scripts.slurm).toBeNull()
    expect(await readFile(launched.scripts.torchrun, 'utf8')).toContain('--device cpu')
  })

  it('refuses a world size that cannot share the global batch, writing nothing', async () => {
    const store = new RunStore(home)
    await expect(
      launchJob(store, torchConfig(32), job({ nodes: 3, processesPerNode: 1 }), {}),
    ).rejects.toThrow(TrainingError)
    expect((await store.list()).runs).toEqual([])
  })
})
