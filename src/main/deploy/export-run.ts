/**
 * Files side of deployment: export a run's stage to a file (atomically: a failed export leaves nothing),
 * read an export back, and turn image files into the model's normalised input.
 */
import { centreOffset, normalisationTable, normaliseBatch } from '../engine/augment'
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import sharp from 'sharp'
import { writeFileAtomic } from '../atomic-write'
import { readManifest } from '../datasets/store'
import type { RunStore } from '../runs/run-store'
import { DeployError } from './errors'
import { float32Params, foldCheckpoint } from './fold'
import { decodeExport, encodeExport, type DecodedExport, type ExportHeader } from './format'

export interface ExportReport {
  file: string
  runId: string
  stage: string
  /** Epochs of the stage completed at the checkpoint exported. */
  epochsCompleted: number
  /** Whether the checkpoint is the stage's final one (a stopped stage exports its last epoch). */
  final: boolean
  fileBytes: number
  /** 1 bit per binary weight + 32 bits per real parameter stored. */
  minimumBytes: number
  overheadBytes: number
  headerBytes: number
  alignmentBytes: number
  binaryParams: number
  realParams: number
  /** The trained float graph: every weight and BN statistic at 32 bits. */
  float32Bytes: number
  /** float32Bytes / fileBytes. */
  compression: number
}

/**
 * Exports a fully binary stage of a run (default `bnn`) to `outFile` and returns its size report. This is
 * what the CLI's `export` and the UI's Export button call.
 */
export async function exportRun(
  store: RunStore,
  runId: string,
  stage = 'bnn',
  outFile: string,
): Promise<ExportReport> {
  const run = await store.read(runId)
  if (!run.config.stages.some((s) => s.name === stage)) {
    throw new DeployError(
      `run ${runId} has no stage ${stage} (stages: ${run.config.stages.map((s) => s.name).join(', ')})`,
    )
  }
  const lines = (await store.checkpoints(runId)).filter((l) => l.stage === stage)
  const line = lines.find((l) => l.final) ?? lines.at(-1)
  if (!line) throw new DeployError(`stage ${stage} of run ${runId} has no checkpoint yet: train it first`)
  const checkpoint = await store.readCheckpoint(runId, line)
  let classes: string[]
  let normalisation: { mean: number[]; std: number[] }
  try {
    const dataset = await readManifest(run.config.data.dataset, store.home)
    classes = dataset.classes
    normalisation = { mean: dataset.stats.mean, std: dataset.stats.std }
  } catch {
    throw new DeployError(
      `dataset ${run.config.data.dataset} of run ${runId} is not in the store: its class names and normalisation are part of the export`,
    )
  }
  const folded = foldCheckpoint(checkpoint, {
    runId,
    stage,
    classes,
    normalisation,
    storedSize: run.config.data.storedSize,
  })
  const { bytes, report } = encodeExport(folded.meta, folded.tensors)
  const file = resolve(outFile)
  try {
    await writeFileAtomic(file, bytes)
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error)
    throw new DeployError(`cannot write ${file}: ${reason}`)
  }
  const float32Bytes = float32Params(checkpoint) * 4
  return {
    file,
    runId,
    stage,
    epochsCompleted: checkpoint.manifest.epochsCompleted,
    final: line.final,
    ...report,
    float32Bytes,
    compression: float32Bytes / report.fileBytes,
  }
}

export async function readExport(file: string): Promise<DecodedExport> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch {
    throw new DeployError(`cannot read ${file}`)
  }
  return decodeExport(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength), file)
}

export interface ModelInput {
  /** Normalised [H, W, C]. */
  values: Float32Array
  /** Set when the image's channels were converted to the model's. */
  converted: string | null
}

/**
 * Decodes an image as the image-folder import does (EXIF rotation, flattened alpha, shorter side resized and
 * centre-cropped) to the model's size and channels, then normalises it with the training statistics. A model
 * trained on crops of a larger store sees what its evaluation saw: the image at the stored size, then its
 * centred input window.
 */
export async function imageInput(file: string, header: ExportHeader): Promise<ModelInput> {
  const { inputSize: size, channels } = header.model
  const stored = Math.max(header.model.storedSize ?? size, size)
  const offset = centreOffset(stored, size)
  if (channels !== 1 && channels !== 3)
    throw new DeployError(`models with ${channels} channels are not supported`)
  let sourceChannels: number
  let pixels: Buffer
  try {
    const meta = await sharp(file).metadata()
    sourceChannels = (meta.channels ?? 0) - (meta.hasAlpha ? 1 : 0)
    let image = sharp(file, { failOn: 'error' })
      .rotate()
      .flatten({ background: '#000000' })
      .resize(stored, stored, { fit: 'cover', position: 'centre' })
    if (stored > size) image = image.extract({ left: offset, top: offset, width: size, height: size })
    image = channels === 1 ? image.grayscale() : image.toColourspace('srgb')
    pixels = await image.raw().toBuffer()
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error)
    throw new DeployError(`cannot decode ${file} as an image: ${reason}`)
  }
  if (pixels.length !== size * size * channels) {
    throw new DeployError(`${file} decoded to ${pixels.length} bytes, expected ${size}×${size}×${channels}`)
  }
  const { mean, std } = header.normalisation
  // The normalisation training used: the same function over the same statistics.
  const values = normaliseBatch(new Uint8Array(pixels), channels, normalisationTable(mean, std))
  const converted =
    sourceChannels === channels
      ? null
      : `${file}: ${sourceChannels}-channel image converted to ${channels === 1 ? 'grayscale' : 'RGB'}, as the model was trained on ${channels}-channel images`
  return { values, converted }
}
