/**
 * A run for a cluster: a job folder on shared storage holding the run folder and the scripts that train it
 * there, the PyTorch engine under torchrun on every node (DDP; rank 0 writes the folder). `launch` writes it
 * and attaches the run, so this workbench follows what the cluster writes as it would a local run.
 *
 *   <job>/runs/<id>/      the run folder (docs/run-format.md)
 *   <job>/torchrun.sh     what one node runs (set R2B_RDZV=host:port of the first node on each)
 *   <job>/job.slurm       the same under Slurm: one torchrun per node, the rendezvous on the first
 *   <job>/logs/           the job's output, one file per Slurm job
 *
 * Resubmitting the same script continues the run from its last checkpoint, with any number of nodes whose
 * processes divide the global batch.
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { RunConfig } from '../../shared/run-config'
import type { RunMeta } from '../../shared/runs'
import { newRunId, RunStore } from '../runs/run-store'
import { checkDataParallel } from './data-parallel'
import { PYTHON_PACKAGE_SOURCE, torchrunArgs } from './torch-engine'

export interface ClusterJob {
  nodes: number
  processesPerNode: number
  /** One process per GPU (NCCL); false: CPU processes over gloo. */
  gpus: boolean
  /** Cores Slurm gives each process (its data loading and host work). */
  cpusPerProcess: number
  syncBatchNorm: boolean
  /** Where datasets/ is, as the nodes see it (shared storage). */
  dataHome: string
  /** The rendezvous port on the first node. */
  port: number
  slurm: { time?: string; partition?: string; account?: string } | null
}

export interface LaunchedJob {
  run: RunMeta
  jobDir: string
  runDir: string
  scripts: { torchrun: string; slurm: string | null }
}

/** A word for a POSIX shell, quoted only when it must be. */
export function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`
}

const command = (words: string[], prefix = '') =>
  prefix + words.map((w) => (w.startsWith('"') ? w : shellWord(w))).join(' ')

function trainArgs(job: ClusterJob, runDir: string): string[] {
  const args = ['train', '--run-dir', runDir, '--data-home', job.dataHome]
  if (!job.gpus) args.push('--device', 'cpu')
  if (job.syncBatchNorm) args.push('--sync-batchnorm')
  return args
}

const environment = [
  '# The engine from this checkout (shared storage); or `pip install` its python/ folder into the',
  '# environment the job runs in and drop PYTHONPATH.',
  `export PYTHONPATH=${shellWord(PYTHON_PACKAGE_SOURCE)}\${PYTHONPATH:+:$PYTHONPATH}`,
  'export PYTHONUNBUFFERED=1',
  `PYTHON="\${R2B_PYTHON:-python3}"`,
]

export function torchrunScript(job: ClusterJob, run: RunMeta, runDir: string): string {
  const torchrun = torchrunArgs({
    nodes: job.nodes,
    processesPerNode: job.processesPerNode,
    rendezvous: { endpoint: '"$R2B_RDZV"', id: `r2b-${run.id}` },
  })
  return [
    '#!/bin/sh',
    `# Trains run ${run.id} on ${job.nodes} node${job.nodes === 1 ? '' : 's'} × ${job.processesPerNode} ${job.gpus ? 'GPUs' : 'CPU processes'}: run this on every node`,
    '# at once, with R2B_RDZV=host:port of the first node (the same on all), e.g.',
    `#   R2B_RDZV=node01:${job.port} sh ${shellWord(runDir.replace(/\/runs\/[^/]+$/, '/torchrun.sh'))}`,
    'set -eu',
    `: "\${R2B_RDZV:?set R2B_RDZV=host:port of the first node, e.g. node01:${job.port}}"`,
    ...environment,
    command([...torchrun, ...trainArgs(job, runDir)], 'exec "$PYTHON" '),
    '',
  ].join('\n')
}

export function slurmScript(job: ClusterJob, run: RunMeta, jobDir: string, runDir: string): string {
  const slurm = job.slurm ?? {}
  const directives = [
    `--job-name=r2b-${run.id}`,
    `--nodes=${job.nodes}`,
    // One torchrun per node; it starts that node's processes.
    '--ntasks-per-node=1',
    ...(job.gpus ? [`--gpus-per-node=${job.processesPerNode}`] : []),
    `--cpus-per-task=${job.processesPerNode * job.cpusPerProcess}`,
    `--output=${join(jobDir, 'logs', 'slurm-%j.out')}`,
    ...(slurm.time ? [`--time=${slurm.time}`] : []),
    ...(slurm.partition ? [`--partition=${slurm.partition}`] : []),
    ...(slurm.account ? [`--account=${slurm.account}`] : []),
  ]
  const torchrun = torchrunArgs({
    nodes: job.nodes,
    processesPerNode: job.processesPerNode,
    rendezvous: { endpoint: `"$head:${job.port}"`, id: '"$SLURM_JOB_ID"' },
  })
  return [
    '#!/bin/bash',
    ...directives.map((d) => `#SBATCH ${d}`),
    `# Run ${run.id}: ${run.config.pipeline} on ${run.config.data.dataset}, global batch ${run.config.stages[0]?.batchSize}`,
    '# split over every process. Submit with `sbatch` as it is; submit it again to continue after it',
    '# ended early (time limit, a node lost): the engine resumes from the last checkpoint.',
    'set -euo pipefail',
    ...environment,
    // The first node of the allocation hosts the rendezvous every torchrun meets at.
    'head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
    // A torchrun that fails (a rank killed, a node lost) ends the others: the run resumes whole.
    command(['srun', '--kill-on-bad-exit=1', '"$PYTHON"', ...torchrun, ...trainArgs(job, runDir)]),
    '',
  ].join('\n')
}

/**
 * Writes the job folder for a config (refused, writing nothing, when its processes cannot share the global
 * batch) and attaches its run to `store`.
 */
export async function launchJob(
  store: RunStore,
  config: RunConfig,
  job: ClusterJob,
  options: { jobDir?: string; name?: string },
): Promise<LaunchedJob> {
  const world = job.nodes * job.processesPerNode
  checkDataParallel(config, { processes: world, syncBatchNorm: job.syncBatchNorm })
  const torchConfig: RunConfig = { ...config, engine: 'torch' }
  const id = newRunId(torchConfig, new Date())
  const jobDir = resolve(options.jobDir ?? join(store.home, 'jobs', id))
  const jobStore = new RunStore(jobDir)
  let run = await jobStore.create(torchConfig, { name: options.name, id })
  const runDir = jobStore.dir(run.id)
  await mkdir(join(jobDir, 'logs'), { recursive: true })
  const torchrun = join(jobDir, 'torchrun.sh')
  await writeFile(torchrun, torchrunScript(job, run, runDir), { mode: 0o755 })
  let slurm: string | null = null
  if (job.slurm) {
    slurm = join(jobDir, 'job.slurm')
    await writeFile(slurm, slurmScript(job, run, jobDir, runDir), { mode: 0o644 })
  }
  run = await store.attach(runDir)
  return { run, jobDir, runDir, scripts: { torchrun, slurm } }
}
