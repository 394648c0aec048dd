/**
 * `npm run schemas`: the JSON Schemas of the run folder and dataset store (docs/run-format.md), generated
 * from the zod schemas that every reader and writer in this repository uses. Another engine, in another
 * language, validates what it writes against these. A test fails when the committed files are stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { z } from 'zod'
import { StoredCheckpointManifest } from '../src/shared/checkpoint'
import { DatasetManifest } from '../src/shared/datasets'
import { RunConfig } from '../src/shared/run-config'
import { LogLine, RunMeta, SnapshotIndexEntry } from '../src/shared/runs'

export const SCHEMA_DIR = join(import.meta.dirname, '..', 'docs', 'schemas')

const documents: Record<string, { title: string; schema: z.ZodType }> = {
  'run-meta': { title: 'run.json: a run (format 2)', schema: RunMeta },
  'log-line': { title: 'events.jsonl: one line of the metrics log (format 2)', schema: LogLine },
  'snapshot-index-entry': {
    title: 'snapshots/index.jsonl: one snapshot payload (format 2)',
    schema: SnapshotIndexEntry,
  },
  'checkpoint-manifest': {
    title: 'checkpoints/<stage>/e<N>/manifest.json (version 2)',
    schema: StoredCheckpointManifest,
  },
  'run-config': { title: 'A resolved run config (run.json `config`)', schema: RunConfig },
  'dataset-manifest': { title: 'datasets/<id>/manifest.json (version 1)', schema: DatasetManifest },
}

/** Every schema file's name and text, as the generator writes them. */
export function schemaFiles(): Record<string, string> {
  const files: Record<string, string> = {}
  for (const [name, { title, schema }] of Object.entries(documents)) {
    // `input`: what a file holds (a loss stored as null, defaults not yet applied).
    const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' })
    files[`${name}.schema.json`] = `${JSON.stringify({ title, ...json }, null, 2)}\n`
  }
  return files
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  mkdirSync(SCHEMA_DIR, { recursive: true })
  for (const [name, text] of Object.entries(schemaFiles())) writeFileSync(join(SCHEMA_DIR, name), text)
  process.stdout.write(`wrote ${Object.keys(schemaFiles()).length} schemas to ${SCHEMA_DIR}\n`)
}
