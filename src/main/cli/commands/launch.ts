/**
 * `launch [config] --nodes N --gpus-per-node G [--slurm]`: a run for a cluster (training/launch.ts). The
 * config is a run config file (JSON: a config, or a run.json whose config to reuse), a run of this store, or
 * made from the same options as `train`. Prints what it wrote and how to start and follow the job.
 */
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { CAC } from 'cac'
import { firstIssue } from '../../../shared/errors'
import { PipelineName, PresetName, RunConfig, TeacherRecipe } from '../../../shared/run-config'
import { describeDistributed, RunId } from '../../../shared/runs'
import { readManifest } from '../../datasets/store'
import { RunStore } from '../../runs/run-store'
import { checkDatasetFits } from '../../training/dataset-fit'
import { launchJob, shellWord, type ClusterJob } from '../../training/launch'
import { newRunConfig } from '../../training/new-run'
import { choiceOption, numberOption, textOption } from '../args'
import { CliError } from '../errors'
import { collect } from './train'

/** A config file (a RunConfig, or a run.json holding one) or a run id of the store. */
async function configFrom(source: string, store: RunStore): Promise<RunConfig> {
  if (!existsSync(source) && RunId.safeParse(source).success) return (await store.read(source)).config
  let json: unknown
  try {
    json = JSON.parse(await readFile(source, 'utf8'))
  } catch (error) {
    throw new CliError(
      `${source}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or run' : 'not JSON'}: give a run config file (\`show RUN --json\` prints one in its "config") or a run id`,
    )
  }
  const body = typeof json === 'object' && json !== null && 'config' in json ? json.config : json
  const parsed = RunConfig.safeParse(body)
  if (!parsed.success) throw new CliError(`${source} is not a run config: ${firstIssue(parsed.error)}`)
  return parsed.data
}

export function registerLaunch(cli: CAC): void {
  cli
    .command(
      'launch [config]',
      'Write a job folder that trains a run on a cluster (torchrun on each node, a Slurm script) and follow it here',
    )
    .option('--nodes <n>', 'Nodes', { default: 1 })
    .option('--gpus-per-node <g>', 'GPUs per node: one process each (NCCL)')
    .option('--cpu-processes-per-node <p>', 'CPU nodes instead: processes per node (gloo)')
    .option('--cpus-per-process <c>', 'Cores Slurm gives each process (default 8 with GPUs, 4 without)')
    .option('--sync-batchnorm', 'Batch-norm statistics over the global batch (SyncBatchNorm)')
    .option('--slurm', 'Also write job.slurm, for sbatch')
    .option('--time <limit>', 'Slurm time limit, e.g. 2-00:00:00')
    .option('--partition <name>', 'Slurm partition')
    .option('--account <name>', 'Slurm account')
    .option('--port <port>', 'Rendezvous port on the first node', { default: 29500 })
    .option('--dir <dir>', 'The job folder, on storage every node mounts (default: <data home>/jobs/<run>)')
    .option('--data-home <dir>', 'Where datasets/ is, as the nodes see it (default: this data home)')
    .option('--dataset <id>', 'Without a config: dataset id', { default: 'fashion-mnist' })
    .option('--preset <name>', 'Without a config: preset', { default: 'quick' })
    .option('--pipeline <name>', 'Without a config: pipeline', { default: 'r2b' })
    .option('--teacher-recipe <recipe>', "Without a config: students (default) | reference (larq zoo's)")
    .option('--set <key=value>', 'Override a config field (repeatable)')
    .option('--seed <n>', 'Random seed')
    .option('--name <name>', 'A name for the run')
    .action(async (source: string | undefined, options: Record<string, unknown>) => {
      const store = new RunStore()
      const nodes = numberOption(options.nodes, '--nodes', { integer: true, min: 1, max: 4096 }) ?? 1
      const gpus = numberOption(options.gpusPerNode, '--gpus-per-node', { integer: true, min: 1, max: 64 })
      const cpus = numberOption(options.cpuProcessesPerNode, '--cpu-processes-per-node', {
        integer: true,
        min: 1,
        max: 1024,
      })
      if ((gpus === undefined) === (cpus === undefined))
        throw new CliError('say what each node runs: --gpus-per-node G, or --cpu-processes-per-node P')
      const slurm = Boolean(options.slurm)
      for (const flag of ['time', 'partition', 'account'] as const)
        if (options[flag] !== undefined && !slurm)
          throw new CliError(`--${flag} is a Slurm setting: add --slurm`)
      const dataHome = resolve(textOption('--data-home', cli.rawArgs) ?? store.home)
      const name = options.name === undefined ? undefined : textOption('--name', cli.rawArgs)
      let config: RunConfig
      if (source !== undefined) {
        if (collect(options.set).length || options.seed !== undefined || options.teacherRecipe !== undefined)
          throw new CliError(
            '--set, --seed and --teacher-recipe make a new config: give them without a config file, or edit the file',
          )
        config = await configFrom(String(source), store)
        checkDatasetFits(config, await readManifest(config.data.dataset, dataHome))
      } else {
        ;({ config } = await newRunConfig(
          dataHome,
          {
            dataset: textOption('--dataset', cli.rawArgs) ?? String(options.dataset),
            preset: choiceOption(options.preset, 'preset', PresetName),
            pipeline: choiceOption(options.pipeline, 'pipeline', PipelineName),
            teacherRecipe: choiceOption(options.teacherRecipe, 'teacher recipe', TeacherRecipe),
            engine: 'torch',
            seed: numberOption(options.seed, '--seed', { integer: true, min: 0, max: 2 ** 31 - 1 }),
            set: collect(options.set),
          },
          { engineHere: false },
        ))
      }
      const processesPerNode = (gpus ?? cpus) as number
      const job: ClusterJob = {
        nodes,
        processesPerNode,
        gpus: gpus !== undefined,
        cpusPerProcess:
          numberOption(options.cpusPerProcess, '--cpus-per-process', { integer: true, min: 1, max: 1024 }) ??
          (gpus !== undefined ? 8 : 4),
        syncBatchNorm: Boolean(options.syncBatchnorm),
        dataHome,
        port: numberOption(options.port, '--port', { integer: true, min: 1, max: 65_535 }) ?? 29500,
        slurm: slurm
          ? {
              time: options.time === undefined ? undefined : String(options.time),
              partition: options.partition === undefined ? undefined : String(options.partition),
              account: options.account === undefined ? undefined : String(options.account),
            }
          : null,
      }
      const launched = await launchJob(store, config, job, {
        jobDir: textOption('--dir', cli.rawArgs),
        name,
      })
      const world = nodes * processesPerNode
      const batch = launched.run.config.stages[0]?.batchSize ?? 0
      const q = shellWord
      process.stdout.write(
        [
          `run ${launched.run.id}: ${launched.run.config.pipeline} on ${launched.run.config.data.dataset}, ${describeDistributed(
            {
              worldSize: world,
              nodes,
              backend: job.gpus ? 'nccl' : 'gloo',
              perProcessBatch: batch / world,
              syncBatchNorm: job.syncBatchNorm,
            },
          )}`,
          `  run folder  ${launched.runDir}`,
          `  torchrun    ${launched.scripts.torchrun}`,
          ...(launched.scripts.slurm ? [`  slurm       ${launched.scripts.slurm}`] : []),
          '',
          'start it:',
          launched.scripts.slurm
            ? `  sbatch ${q(launched.scripts.slurm)}`
            : `  on each of the ${nodes} node${nodes === 1 ? '' : 's'}: R2B_RDZV=<first node>:${job.port} sh ${q(launched.scripts.torchrun)}`,
          'follow it (it is attached here; from another machine that mounts the folder, attach it there):',
          `  npm run r2b -- show ${launched.run.id}     npm run r2b -- attach ${q(launched.runDir)}     npm run r2b -- serve`,
          'after it ends early (time limit, a node or rank lost): start it again the same way; it resumes',
          'from its last checkpoint, on any number of processes that divide the global batch.',
          '',
        ].join('\n'),
      )
    })
}
