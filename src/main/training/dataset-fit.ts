/**
 * Whether a run's config can train on its dataset: the shape and classes match, both splits have images,
 * and every stage's batch fits in the training split. Checked when a run is created and again when it is
 * queued (a dataset may have been replaced, or run.json edited, in between).
 */
import type { DatasetManifest } from '../../shared/datasets'
import type { RunConfig } from '../../shared/run-config'
import { TrainingError } from './errors'

export function checkDatasetFits(config: RunConfig, manifest: DatasetManifest): void {
  const [size, , channels] = manifest.shape
  const id = manifest.id
  const stored = config.data.storedSize || config.data.inputSize
  if (
    stored !== size ||
    config.data.channels !== channels ||
    config.data.classes !== manifest.classes.length
  ) {
    throw new TrainingError(
      `the data.* settings must match dataset ${id} (${size}×${size}×${channels}, ${manifest.classes.length} classes${config.data.storedSize ? `; data.storedSize ${config.data.storedSize} is the size it stores` : ''})`,
    )
  }
  for (const split of ['train', 'test'] as const) {
    if (manifest.splits[split] === 0)
      throw new TrainingError(
        `dataset ${id} has no ${split} images: import it again with its ${split} files (see \`npm run r2b -- datasets inspect ${id}\`)`,
      )
  }
  for (const stage of config.stages) {
    if (stage.batchSize > manifest.splits.train)
      throw new TrainingError(
        `stage ${stage.name}: batch size ${stage.batchSize} is larger than the ${manifest.splits.train} training images of ${id}: lower stages.<i>.batchSize`,
      )
  }
}
