/**
 * Training from a terminal: `train`, `resume`, `runs`, `show`, `stop`. Progress bars go to stderr; with
 * --json, stdout carries one JSON object per event and a final summary.
 */
import type { CAC } from 'cac'
import { EngineName, PipelineName, PresetName, presetNames, TeacherRecipe } from '../../../shared/run-config'
import { describeDistributed, type DataParallel, type RunMeta } from '../../../shared/runs'
import { RunStore } from '../../runs/run-store'
import { createRun } from '../../training/new-run'
import { trainingBusy, trainingLock } from '../../process-lock'
import { requestStop } from '../../training/requests'
import { Trainer, type TrainerEvent } from '../../training/trainer'
import type { SessionOptions } from '../../training/data-parallel'
import type { Followed } from '../../runs/follower'
import { launchWorkerProcess } from '../../training/worker-client'
import { CliError } from '../errors'
import { onInterrupt } from '../interrupt'
import { progressBar } from '../progress'
import { choiceOption, numberOption, textOption } from '../args'

const pct = (x: number | null) => (x === null ? '   –  ' : `${(100 * x).toFixed(1).padStart(5)}%`)

export function stageTable(run: RunMeta): string {
  const rows = run.stages.map(
    (s) =>
      `  ${s.name.padEnd(12)} ${s.status.padEnd(9)} ${`${s.epochsCompleted}/${s.epochs}`.padStart(7)}  ${pct(s.testTop1)}  ${pct(s.testTop5)}`,
  )
  return [
    `  ${'stage'.padEnd(12)} ${'status'.padEnd(9)} ${'epochs'.padStart(7)}   top-1   top-5`,
    ...rows,
  ].join('\n')
}

export function summaryJson(run: RunMeta) {
  return {
    runId: run.id,
    status: run.status,
    error: run.error,
    stages: run.stages.map((s) => ({
      name: s.name,
      testTop1: s.testTop1,
      testTop5: s.testTop5,
      epochs: s.epochsCompleted,
    })),
  }
}

/** A JSON line per event: the log's records as stored, snapshots by what they hold (the arrays stay on disk). */
function eventJson(event: Extract<Followed, { type: 'record' | 'snapshot' }>): object {
  if (event.type === 'record') return { event: event.record.kind, ...event.record }
  const { entry } = event
  return {
    event: entry.kind,
    stage: entry.stage,
    epochsCompleted: entry.epochsCompleted,
    ...(entry.kind === 'attention'
      ? { points: entry.points.map((p) => p.point) }
      : { blocks: entry.gates.map((g) => g.block) }),
  }
}

/**
 * What a run's records look like on a terminal: a progress bar per stage (a line per epoch when stderr is
 * not a terminal), and with --json one JSON line per record on stdout. Shared by `train`, `resume` and
 * `attach`, whoever the records come from.
 */
export function trainingProgress(json: boolean) {
  let bar: ReturnType<typeof progressBar> | null = null
  let latest = ''
  const show = (event: TrainerEvent | (Followed & { runId?: string })) => {
    // The PyTorch engine's own words (a warning, an error) reach the terminal as they are.
    if (event.type === 'output') {
      if (!event.line.startsWith('{')) process.stderr.write(`${event.line}\n`)
      return
    }
    if (event.type !== 'record' && event.type !== 'snapshot') return
    if (json) process.stdout.write(`${JSON.stringify(eventJson(event))}\n`)
    if (event.type !== 'record') return
    const r = event.record
    if (r.kind === 'stage-start') {
      bar = progressBar(
        `[${r.stageIndex + 1}] ${r.stage.padEnd(8)}`,
        r.epochs * r.stepsPerEpoch,
        !json && process.stderr.isTTY,
      )
      bar.update(r.startEpoch * r.stepsPerEpoch, r.startEpoch ? `resumed at epoch ${r.startEpoch + 1}` : '')
    } else if (r.kind === 'step') {
      bar?.update(r.step + 1, `epoch ${r.epoch + 1} · loss ${r.loss.total.toFixed(3)}${latest}`)
    } else if (r.kind === 'epoch') {
      latest = ` · test top-1 ${(100 * r.test.top1).toFixed(1)}%`
      if (!json && !process.stderr.isTTY)
        process.stderr.write(
          `${r.stage} epoch ${r.epoch + 1}: train top-1 ${(100 * r.train.top1).toFixed(1)}%, test top-1 ${(100 * r.test.top1).toFixed(1)}%\n`,
        )
    } else if (r.kind === 'stage-end') {
      bar?.stop()
      bar = null
      latest = ''
    }
  }
  return { show, stop: () => bar?.stop() }
}

/**
 * Trains (or resumes) a run in this process with a progress bar per stage; Ctrl+C stops it resumably. A
 * `fresh` run (just created by this command) that cannot be queued is deleted again: a refused `train`
 * leaves no run behind.
 */
export async function trainWithProgress(
  store: RunStore,
  runId: string,
  json: boolean,
  options: { fresh?: boolean } & SessionOptions = {},
): Promise<RunMeta> {
  const trainer = new Trainer(store, () => launchWorkerProcess())
  const progress = trainingProgress(json)
  const off = trainer.on(progress.show)
  // The worker ignores the terminal's Ctrl+C; this process decides: stop at the next step, or, on a second
  // press, end the worker now (the run is then interrupted, resumable from its last checkpoint).
  const offInterrupt = onInterrupt((press) => {
    if (press === 1) {
      process.stderr.write('\nstopping at the next step (Ctrl+C again to abort now)…\n')
      void trainer.stop(runId).catch(() => {})
    } else {
      process.stderr.write('aborting: the run keeps its last checkpoint\n')
      process.exitCode = 130
      trainer.abort()
    }
  })
  try {
    await trainer.reconcile()
    let queued: { done: Promise<RunMeta> }
    try {
      queued = await trainer.enqueue(runId, options)
    } catch (error) {
      if (options.fresh) await store.remove(runId).catch(() => {})
      throw error
    }
    return await queued.done
  } finally {
    offInterrupt()
    off()
    progress.stop()
    await trainer.shutdown()
  }
}

function report(run: RunMeta, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(summaryJson(run))}\n`)
    return
  }
  process.stdout.write(
    `\nrun ${run.id}: ${run.status}${run.error ? ` — ${run.error}` : ''}\n${stageTable(run)}\n`,
  )
}

/** `--nproc N [--sync-batchnorm]`, or nothing when --nproc is absent. */
export function dataParallelOption(options: Record<string, unknown>): DataParallel | undefined {
  const processes = numberOption(options.nproc, '--nproc', { integer: true, min: 1, max: 256 })
  if (processes === undefined) {
    if (options.syncBatchnorm) throw new CliError('--sync-batchnorm goes with --nproc N (N processes)')
    return undefined
  }
  return { processes, syncBatchNorm: Boolean(options.syncBatchnorm) }
}

/** A repeatable option's values (cac gives one value bare, several as an array). */
export function collect(value: unknown): string[] {
  if (value === undefined) return []
  return (Array.isArray(value) ? value : [value]).map(String)
}

export function registerTrain(cli: CAC): void {
  cli
    .command('train', 'Train a pipeline on a dataset (one run; see `runs`)')
    .option('--dataset <id>', 'Dataset id (see `datasets`)', { default: 'fashion-mnist' })
    .option('--preset <name>', presetNames.join(' | '), { default: 'quick' })
    .option('--pipeline <name>', 'r2b | baseline | sb | sb+att | sb+att+kd | sb+gate | sb+progressive', {
      default: 'r2b',
    })
    .option('--downsample <kind>', 'real | binary shortcut convolutions')
    .option(
      '--teacher-recipe <recipe>',
      "students (the preset's Adam recipe, default) | reference (larq zoo's: SGD 0.1, cosine)",
    )
    .option(
      '--engine <engine>',
      'tfjs (default: WebGPU or wasm, no install) | torch (PyTorch: CUDA, MPS, CPU)',
    )
    .option(
      '--nproc <n>',
      'PyTorch engine: train in N processes (DDP under torchrun: one per GPU, or CPU cores over gloo)',
    )
    .option('--sync-batchnorm', 'With --nproc: batch-norm statistics over the global batch (SyncBatchNorm)')
    .option('--set <key=value>', 'Override any config field (repeatable), e.g. --set stages.0.epochs=1')
    .option('--seed <n>', 'Random seed')
    .option('--name <name>', 'A name for the run')
    .option('--json', 'One JSON object per event on stdout, then a summary')
    .action(async (options: Record<string, unknown>) => {
      const json = Boolean(options.json)
      const store = new RunStore()
      const downsample = options.downsample as string | undefined
      if (downsample !== undefined && downsample !== 'real' && downsample !== 'binary')
        throw new CliError(`--downsample must be real or binary, got ${downsample}`)
      const dataParallel = dataParallelOption(options)
      // Refused before anything is written: a second CLI must not leave a run behind.
      const holder = await trainingLock(store.root).holder()
      if (holder) throw new CliError(trainingBusy(holder))
      const run = await createRun(store, {
        dataset: textOption('--dataset', cli.rawArgs) ?? String(options.dataset),
        preset: choiceOption(options.preset, 'preset', PresetName),
        pipeline: choiceOption(options.pipeline, 'pipeline', PipelineName),
        downsample,
        teacherRecipe: choiceOption(options.teacherRecipe, 'teacher recipe', TeacherRecipe),
        engine: choiceOption(options.engine, 'engine', EngineName),
        seed: numberOption(options.seed, '--seed', { integer: true, min: 0, max: 2 ** 31 - 1 }),
        set: collect(options.set),
        dataParallel,
        name: options.name === undefined ? undefined : (textOption('--name', cli.rawArgs) ?? ''),
      })
      if (json)
        process.stdout.write(`${JSON.stringify({ event: 'run', runId: run.id, config: run.config })}\n`)
      else
        process.stderr.write(
          `run ${run.id}: ${run.config.pipeline} on ${run.config.data.dataset}, preset ${run.config.preset}\n`,
        )
      const done = await trainWithProgress(store, run.id, json, { fresh: true, dataParallel })
      report(done, json)
      if (done.status !== 'finished') process.exitCode = 1
    })

  cli
    .command('resume <run>', 'Continue an interrupted or stopped run from its last checkpoint')
    .option('--nproc <n>', 'PyTorch engine: processes to continue in (default: as it last trained here)')
    .option('--sync-batchnorm', 'With --nproc: batch-norm statistics over the global batch')
    .option('--json', 'One JSON object per event on stdout, then a summary')
    .action(async (runId: string, options: Record<string, unknown>) => {
      const store = new RunStore()
      const dataParallel = dataParallelOption(options)
      const done = await (async () => {
        await store.read(runId)
        return trainWithProgress(store, runId, Boolean(options.json), { dataParallel })
      })()
      report(done, Boolean(options.json))
      if (done.status !== 'finished') process.exitCode = 1
    })

  cli
    .command('runs', 'List runs, newest first')
    .option('--json', 'Print an array of run summaries')
    .action(async (options: { json?: boolean }) => {
      const store = new RunStore()
      await new Trainer(store, () => launchWorkerProcess()).reconcile()
      const { runs, problems } = await store.list()
      for (const problem of problems) process.stderr.write(`warning: ${problem}\n`)
      if (options.json) {
        process.stdout.write(`${JSON.stringify(runs.map(summaryJson))}\n`)
        return
      }
      if (runs.length === 0) {
        process.stdout.write('no runs yet: start one with `npm run r2b -- train` (or `npm run demo`)\n')
        return
      }
      for (const run of runs) {
        const last = [...run.stages].reverse().find((s) => s.testTop1 !== null)
        process.stdout.write(
          `${run.id}  ${run.status.padEnd(11)} ${run.config.pipeline.padEnd(14)} ${run.config.data.dataset.padEnd(14)} ${
            last ? `${last.name} top-1 ${pct(last.testTop1)}` : ''
          }\n`,
        )
      }
    })

  cli
    .command('show <run>', 'A run: config, environment, stages and their accuracy')
    .option('--json', 'Print the run metadata as JSON')
    .action(async (runId: string, options: { json?: boolean }) => {
      const store = new RunStore()
      const run = await store.read(runId)
      if (options.json) {
        process.stdout.write(`${JSON.stringify(run, null, 2)}\n`)
        return
      }
      const { engine, device } = run.environment
      process.stdout.write(
        [
          `run      ${run.id} (${run.name})`,
          `status   ${run.status}${run.error ? ` — ${run.error}` : ''}`,
          `created  ${run.createdAt}`,
          `pipeline ${run.config.pipeline}, preset ${run.config.preset}, dataset ${run.config.data.dataset} ` +
            `(${run.config.data.inputSize}×${run.config.data.inputSize}×${run.config.data.channels}, ${run.config.data.classes} classes)`,
          `model    ResNet-18 width ×${run.config.model.width}, ${run.config.model.downsample} downsample, binary padding ${run.config.model.binaryPadding}`,
          `engine   ${engine}${device ? ` on ${device.kind} — ${device.description}` : ' (not started)'}`,
          ...(run.environment.distributed
            ? [`parallel ${describeDistributed(run.environment.distributed)}`]
            : []),
          `folder   ${store.dir(run.id)}`,
          '',
          stageTable(run),
          '',
        ].join('\n'),
      )
    })

  cli
    .command('stop <run>', 'Ask the process training a run to stop it (resumable later)')
    .action(async (runId: string) => {
      const store = new RunStore()
      const run = await store.read(runId)
      if (run.status !== 'running' && run.status !== 'paused' && run.status !== 'queued')
        throw new CliError(`run ${runId} is ${run.status}, not training`)
      await requestStop(store, runId)
      process.stdout.write(`asked the training process to stop run ${runId}; it stops at the next step\n`)
    })
}
