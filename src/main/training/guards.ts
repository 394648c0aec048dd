/**
 * Destructive actions ask the training lock first: whatever process trains a run (this one or another), its
 * run and its dataset are not deleted under it.
 */
import { trainingLock } from '../process-lock'
import { runsDir, RunStore } from '../runs/run-store'
import { TrainingError } from './errors'

/** Refuses to remove a dataset that the run being trained (by any process) reads. */
export async function refuseIfDatasetInUse(home: string, datasetId: string): Promise<void> {
  const holder = await trainingLock(runsDir(home)).holder()
  if (!holder) return
  const run = await new RunStore(home).read(holder.what).catch(() => null)
  if (run?.config.data.dataset === datasetId)
    throw new TrainingError(
      `dataset ${datasetId} is in use: run ${run.id} trains on it (pid ${holder.pid}); stop it first with \`npm run r2b -- stop ${run.id}\``,
    )
}
