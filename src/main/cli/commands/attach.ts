/**
 * `attach DIR`: a run folder that another process or machine writes (a torchrun or Slurm job's folder on
 * shared storage, a copy brought over) shown in this workbench and followed live, read-only: its progress
 * as `train` prints it, until it ends or Ctrl+C (which stops following, not the run). `runs`, `show`,
 * `report`, `inspect` and `serve` see it from then on; `runs rm` forgets it without touching the folder.
 */
import type { CAC } from 'cac'
import type { RunMeta } from '../../../shared/runs'
import { RunFollower } from '../../runs/follower'
import { RunStore } from '../../runs/run-store'
import { onInterrupt } from '../interrupt'
import { stageTable, summaryJson, trainingProgress } from './train'

const settled = (status: RunMeta['status']) =>
  status === 'finished' || status === 'failed' || status === 'stopped' || status === 'interrupted'

export function registerAttach(cli: CAC): void {
  cli
    .command(
      'attach <dir>',
      'Show and follow a run folder that another process or machine writes (read-only)',
    )
    .option('--json', 'One JSON object per record on stdout, then a summary')
    .action(async (dir: string, options: { json?: boolean }) => {
      const json = Boolean(options.json)
      const store = new RunStore()
      const attached = await store.attach(String(dir))
      process.stderr.write(
        `attached run ${attached.id} (${attached.status}) from ${store.dir(attached.id)}\n`,
      )
      const progress = trainingProgress(json)
      let last = attached
      let offInterrupt = () => {}
      await new Promise<void>((resolve) => {
        const follower = new RunFollower(
          store,
          attached.id,
          (change) => {
            progress.show(change)
            if (change.type !== 'run') return
            last = change.run
            // Ended: one last read picks up whatever was written with the final status.
            if (settled(change.run.status)) void follower.stop().then(resolve)
          },
          (error) => process.stderr.write(`warning: ${error.message}\n`),
        )
        offInterrupt = onInterrupt(() => {
          process.stderr.write('\nstopped following; the run goes on where it was started\n')
          void follower.stop().then(resolve)
        })
        void follower.start({ intervalMs: 500 }).then(() => {
          if (settled(last.status)) void follower.stop().then(resolve)
        })
      })
      offInterrupt()
      progress.stop()
      const run = await store.read(attached.id)
      if (json) process.stdout.write(`${JSON.stringify(summaryJson(run))}\n`)
      else
        process.stdout.write(
          `\nrun ${run.id}: ${run.status}${run.error ? ` — ${run.error}` : ''}\n${stageTable(run)}\n`,
        )
    })
}
