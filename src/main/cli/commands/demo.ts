import { join } from 'node:path'
import { EngineName } from '../../../shared/run-config'
import type { RunMeta } from '../../../shared/runs'
import { choiceOption } from '../args'
import type { CAC } from 'cac'
import { ensureBundledDataset } from '../../datasets/import'
import { RunStore } from '../../runs/run-store'
import { createRun } from '../../training/new-run'
import { importProgressBar } from '../progress'
import { writeReport } from './report'
import { collect, stageTable, trainWithProgress } from './train'

/**
 * `demo`: the main job on the embedded default. Trains the quick preset of the R2B chain on the bundled
 * Fashion-MNIST (teacher → tanh student → sign-activation student → fully binary student), writes the run and
 * its report, and says where they are.
 */
export function registerDemo(cli: CAC): void {
  cli
    .command('demo', 'Train the R2B chain (quick preset) on the bundled Fashion-MNIST and write its report')
    .option('--set <key=value>', 'Override any config field (repeatable)')
    .option('--engine <engine>', 'tfjs (default) | torch (the PyTorch engine)')
    .action(async (options: { set?: string | string[]; engine?: unknown }) => {
      const engine = choiceOption(options.engine, 'engine', EngineName)
      const store = new RunStore()
      const say = (line: string) => process.stderr.write(`${line}\n`)
      say('R2B Workbench demo: the Real-to-Binary chain, quick preset, on the bundled Fashion-MNIST')
      const bar = importProgressBar('registering Fashion-MNIST')
      await ensureBundledDataset({ home: store.home, onProgress: (event) => bar.update(event) })
      bar.stop()
      const set = collect(options.set)
      const run = await createRun(store, {
        dataset: 'fashion-mnist',
        preset: 'quick',
        pipeline: 'r2b',
        set,
        engine,
        name: `demo: r2b on Fashion-MNIST${engine === 'torch' ? ' (PyTorch)' : ''}`,
      })
      say(
        `run ${run.id}: teacher → tanh → ban (sign activations) → bnn (fully binary), ${run.config.stages.length} stages`,
      )
      const started = Date.now()
      const done = await trainWithProgress(store, run.id, false, { fresh: true })
      const minutes = ((Date.now() - started) / 60_000).toFixed(1)
      const report = await writeReport(store, run.id, join(store.dir(run.id), 'report'))
      process.stdout.write(
        [
          '',
          `run ${run.id}: ${done.status} in ${minutes} min${done.error ? ` — ${done.error}` : ''}`,
          stageTable(done),
          '',
          `run folder  ${store.dir(run.id)}`,
          `report      file://${report}`,
          '',
          budgetNote(done),
          '',
          'next:',
          `  npm run r2b -- show ${run.id}`,
          `  npm run r2b -- inspect ${run.id} --image 0      # attention maps and gates of one test image, as PNG`,
          `  npm run r2b -- serve                           # the workbench UI in a browser`,
          `  npm start                                       # the desktop app (Runs shows this run)`,
          `  npm run r2b -- ablation --engine torch         # the paper's ablation on Fashion-MNIST: every method at one budget`,
          `                                                  # (ablation-small), 3 seeds; see docs/recipes.md for its time and table`,
          '',
        ].join('\n'),
      )
      if (done.status !== 'finished') process.exitCode = 1
    })
}

/** What the demo's numbers can and cannot say: its budget is one seed of a few hundred steps per stage. */
function budgetNote(run: RunMeta): string {
  const stage = run.config.stages[0]!
  const steps = stage.stepsPerEpoch > 0 ? `${stage.stepsPerEpoch} steps` : 'the whole training split'
  return [
    `budget      ${run.config.stages.length} stages × ${stage.epochs} epochs of ${steps} (batch ${stage.batchSize}), width ×${run.config.model.width}, one seed,`,
    `            ${run.config.data.testLimit || 'all'} test images: enough to see each stage work, too small to rank methods against each other`,
    '            (seeds alone move a result by several points here). `ablation` compares them over seeds at one shared budget.',
  ].join('\n')
}
