/**
 * Dataset commands: `import <path>`, `datasets` (list), `datasets rm|rename|inspect|add-default`. The
 * datasets benchmark is a target of `bench` (./bench.ts).
 */
import { dataHome } from '../../paths'
import { refuseIfDatasetInUse } from '../../training/guards'
import type { CAC } from 'cac'
import { datasetRecord, ImportFormat, type DatasetManifest } from '../../../shared/datasets'
import { ensureBundledDataset, importDataset } from '../../datasets/import'
import { inspectDataset } from '../../datasets/inspect'
import { listDatasets, removeDataset, renameDataset } from '../../datasets/store'
import { ImportCancelledError } from '../../datasets/errors'
import { CliError } from '../errors'
import { onInterrupt } from '../interrupt'
import { numberOption, textOption } from '../args'
import { importProgressBar } from '../progress'

function print(text: string): void {
  process.stdout.write(`${text}\n`)
}

/** Cancels the import on Ctrl-C; the store is left as it was. Later presses wait for the clean-up. */
function cancelOnInterrupt(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController()
  const dispose = onInterrupt((press) => {
    if (press === 1) {
      process.stderr.write('\ncancelling the import…\n')
      controller.abort()
    } else process.stderr.write('still removing the partial import; it takes a moment\n')
  })
  return { signal: controller.signal, dispose }
}

function describe(manifest: DatasetManifest): string {
  const [h, w, c] = manifest.shape
  return (
    `${manifest.id}  "${manifest.name}"  ${manifest.format}  ${h}×${w}×${c}  ` +
    `train ${manifest.splits.train}, test ${manifest.splits.test}  ${manifest.classes.length} classes`
  )
}

interface ImportFlags {
  name?: unknown
  format?: unknown
  size?: unknown
  labels?: unknown
  seed?: unknown
  testFraction?: unknown
  json?: boolean
}

async function importCommand(path: string, flags: ImportFlags, rawArgs: readonly string[]): Promise<void> {
  let format: ImportFormat | undefined
  if (flags.format !== undefined) {
    const parsed = ImportFormat.safeParse(String(flags.format))
    if (!parsed.success)
      throw new CliError(`--format ${String(flags.format)}: use one of ${ImportFormat.options.join(', ')}`)
    format = parsed.data
  }
  const labels = flags.labels === undefined ? undefined : String(flags.labels)
  if (labels !== undefined && labels !== 'fine' && labels !== 'coarse') {
    throw new CliError(`--labels ${labels}: use fine or coarse`)
  }
  const bar = importProgressBar('import')
  const cancel = cancelOnInterrupt()
  try {
    const result = await importDataset(String(path), {
      ...(flags.name !== undefined ? { name: textOption('--name', rawArgs) ?? '' } : {}),
      ...(format ? { format } : {}),
      ...(labels ? { labels } : {}),
      size: numberOption(flags.size, '--size', { integer: true, min: 1, max: 1024 }),
      seed: numberOption(flags.seed, '--seed', { integer: true, min: 0 }),
      testFraction: numberOption(flags.testFraction, '--test-fraction', { min: 0, max: 0.9 }),
      signal: cancel.signal,
      onProgress: bar.update,
    })
    bar.stop()
    if (flags.json) {
      print(JSON.stringify(datasetRecord(result.manifest)))
    } else {
      print(`imported ${describe(result.manifest)}`)
    }
    if (result.skipped.count > 0) {
      process.stderr.write(`skipped ${result.skipped.count} unreadable file(s):\n`)
      for (const file of result.skipped.files.slice(0, 20))
        process.stderr.write(`  ${file.file}: ${file.reason}\n`)
      if (result.skipped.count > 20) process.stderr.write(`  … (all listed in the dataset's manifest.json)\n`)
    }
  } catch (error) {
    // The conventional status of a command ended by Ctrl+C, after it cleaned up.
    if (error instanceof ImportCancelledError) process.exitCode = 130
    throw error
  } finally {
    bar.stop()
    cancel.dispose()
  }
}

async function ensureBundled(): Promise<void> {
  const bar = importProgressBar('registering the bundled Fashion-MNIST')
  try {
    await ensureBundledDataset({ onProgress: bar.update })
  } finally {
    bar.stop()
  }
}

async function datasetsCommand(
  action: string | undefined,
  id: string | undefined,
  name: string | undefined,
  flags: { json?: boolean; samples?: unknown; perClass?: unknown },
): Promise<void> {
  const need = (value: string | undefined, what: string): string => {
    if (value === undefined || value === '') throw new CliError(`datasets ${action}: missing ${what}`)
    return String(value)
  }
  switch (action) {
    case undefined:
    case 'ls':
    case 'list': {
      // The bundled dataset is registered on first use, so a fresh install lists it.
      await ensureBundled()
      const listing = await listDatasets()
      if (flags.json) {
        print(JSON.stringify(listing.datasets.map(datasetRecord)))
      } else {
        for (const manifest of listing.datasets) print(describe(manifest))
      }
      for (const problem of listing.problems)
        process.stderr.write(`warning: ${problem.id}: ${problem.reason}\n`)
      return
    }
    case 'rm':
    case 'remove': {
      const target = need(id, 'dataset id')
      await refuseIfDatasetInUse(dataHome(), target)
      await removeDataset(target)
      if (flags.json) print(JSON.stringify({ removed: target }))
      else print(`removed ${target}`)
      return
    }
    case 'rename': {
      const target = need(id, 'dataset id')
      const manifest = await renameDataset(target, need(name, 'new name'))
      print(flags.json ? JSON.stringify(datasetRecord(manifest)) : `renamed ${describe(manifest)}`)
      return
    }
    case 'inspect': {
      const target = need(id, 'dataset id')
      const inspection = await inspectDataset(target, {
        ...(flags.samples !== undefined ? { samplesDir: String(flags.samples) } : {}),
        perClass: numberOption(flags.perClass, '--per-class', { integer: true, min: 1, max: 100 }) ?? 1,
      })
      if (flags.json) {
        const { manifest, classes, samples } = inspection
        print(JSON.stringify({ ...datasetRecord(manifest), manifest, classCounts: classes, samples }))
        return
      }
      const { manifest } = inspection
      print(describe(manifest))
      print(
        `source: ${manifest.source.path} (sha256 ${manifest.source.sha256}, ${manifest.source.bytes} bytes)`,
      )
      print(`created: ${manifest.createdAt}`)
      print(
        `mean: ${manifest.stats.mean.map((v) => v.toFixed(4)).join(', ')}  std: ${manifest.stats.std.map((v) => v.toFixed(4)).join(', ')}`,
      )
      if (manifest.skipped.count > 0) print(`skipped at import: ${manifest.skipped.count} file(s)`)
      const width = Math.max(5, ...inspection.classes.map((row) => row.name.length))
      print(`${'class'.padEnd(width)}  ${'train'.padStart(7)}  ${'test'.padStart(7)}`)
      for (const row of inspection.classes) {
        print(`${row.name.padEnd(width)}  ${String(row.train).padStart(7)}  ${String(row.test).padStart(7)}`)
      }
      for (const file of inspection.samples) print(`sample: ${file}`)
      return
    }
    case 'add-default':
    case 'bundled': {
      await ensureBundled()
      const listing = await listDatasets()
      const manifest = listing.datasets.find((d) => d.id === 'fashion-mnist')
      if (manifest) print(flags.json ? JSON.stringify(datasetRecord(manifest)) : describe(manifest))
      return
    }
    default:
      throw new CliError(`datasets ${action}: unknown action (use rm, rename, inspect or add-default)`)
  }
}

export function registerDatasets(cli: CAC): void {
  cli
    .command('import <path>', 'Import a CIFAR-10/100 binary archive or folder, IDX files or an image folder')
    .option('--name <name>', 'Display name (default: from the path)')
    .option('--format <format>', 'cifar10 | cifar100 | idx | imagefolder (default: detected)')
    .option('--size <size>', 'Image folders: square image side after resize and centre crop (default 32)')
    .option('--labels <labels>', 'CIFAR-100: fine (default) or coarse')
    .option('--seed <seed>', 'Image folders without train/ and test/: hold-out seed (default 0)')
    .option(
      '--test-fraction <fraction>',
      'Image folders without train/ and test/: held-out share (default 0.2)',
    )
    .option('--json', 'Print the new dataset record as JSON')
    .action((path: string, flags: ImportFlags) => importCommand(path, flags, cli.rawArgs))

  cli
    .command(
      'datasets [action] [id] [name]',
      'List datasets; `datasets rm <id>`, `datasets rename <id> <name>`, `datasets inspect <id>`, `datasets add-default`',
    )
    .option('--json', 'Print JSON')
    .option('--samples <dir>', 'inspect: write sample images of each class to this folder')
    .option('--per-class <n>', 'inspect: sample images per class (default 1)')
    .action(
      (
        action: string | undefined,
        id: string | undefined,
        name: string | undefined,
        flags: { json?: boolean; samples?: unknown; perClass?: unknown },
      ) =>
        datasetsCommand(
          action,
          id === undefined ? undefined : String(id),
          name === undefined ? undefined : String(name),
          flags,
        ),
    )
}
