/**
 * Running the paper's ablation as ordinary runs under one group: each row × downsample × seed is a run of
 * its pipeline with the same budget and overrides (nothing tuned for one row and not the others). The group
 * file records which run is which cell, so running the same ablation again trains only what is missing:
 * finished cells are kept, interrupted or stopped ones resumed.
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  AblationGroup,
  ablationSummary,
  ablationTable,
  cellKey,
  type AblationSummary,
  type AblationRow,
  type AblationTable,
  type Downsample,
} from '../../shared/ablation'
import { firstIssue } from '../../shared/errors'
import type { EngineName, PresetName } from '../../shared/run-config'
import type { RunMeta } from '../../shared/runs'
import { writeFileAtomic } from '../atomic-write'
import type { RunStore } from '../runs/run-store'
import { TrainingError } from './errors'
import { createRun } from './new-run'

export interface AblationOptions {
  dataset: string
  preset: PresetName
  engine: EngineName
  rows: AblationRow[]
  downsample: Downsample[]
  /** Seeds firstSeed … firstSeed + seeds − 1 (default first seed 1). */
  seeds: number
  firstSeed?: number
  set: string[]
  /** Default: derived from dataset, preset and engine. */
  group?: string
}

export const ablationsDir = (home: string) => join(home, 'ablations')

function groupName(options: AblationOptions): string {
  const base = `${options.dataset}-${options.preset}-${options.engine}`
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
  return options.group ?? base.slice(0, 80)
}

export async function readGroup(home: string, group: string): Promise<AblationGroup | null> {
  const file = join(ablationsDir(home), `${group}.json`)
  if (!existsSync(file)) return null
  let json: unknown
  try {
    json = JSON.parse(await readFile(file, 'utf8'))
  } catch {
    throw new TrainingError(`${file} is not valid JSON: remove it to start the ablation group again`)
  }
  const parsed = AblationGroup.safeParse(json)
  if (!parsed.success) throw new TrainingError(`${file}: ${firstIssue(parsed.error)}`)
  return parsed.data
}

/**
 * Writes the group merged with what is on disk now, so that several processes may fill one group (say one
 * per machine, each with its own seeds): each keeps the cells the others recorded, and adds its own.
 */
async function saveGroup(home: string, group: AblationGroup): Promise<AblationGroup> {
  await mkdir(ablationsDir(home), { recursive: true })
  const disk = await readGroup(home, group.group).catch(() => null)
  const merged: AblationGroup = disk
    ? {
        ...group,
        rows: [...new Set([...disk.rows, ...group.rows])],
        downsample: [...new Set([...disk.downsample, ...group.downsample])],
        seeds: [...new Set([...disk.seeds, ...group.seeds])].sort((a, b) => a - b),
        runs: { ...disk.runs, ...group.runs },
      }
    : group
  await writeFileAtomic(
    join(ablationsDir(home), `${group.group}.json`),
    `${JSON.stringify(merged, null, 2)}\n`,
  )
  return merged
}

/** The group's table from the runs as they are on disk now. */
export async function groupTable(store: RunStore, group: AblationGroup): Promise<AblationTable> {
  return ablationTable(group, await groupRuns(store, group))
}

/** The runs of a group that can be read now; a missing or unreadable run leaves its cells not started. */
async function groupRuns(store: RunStore, group: AblationGroup): Promise<Map<string, RunMeta>> {
  const runs = new Map<string, RunMeta>()
  for (const id of new Set(Object.values(group.runs))) {
    const run = await store.read(id).catch(() => null)
    if (run) runs.set(id, run)
  }
  return runs
}

/**
 * Every group of the data home with its table as its runs stand now, newest first. A group file that cannot
 * be read (not JSON, not a group, named for another group) is reported in `problems`, not fatal.
 */
export async function listAblations(
  store: RunStore,
): Promise<{ groups: AblationSummary[]; problems: string[] }> {
  let names: string[]
  try {
    names = await readdir(ablationsDir(store.home))
  } catch {
    return { groups: [], problems: [] }
  }
  const groups: AblationSummary[] = []
  const problems: string[] = []
  for (const name of names.filter((n) => n.endsWith('.json') && !n.startsWith('.')).sort()) {
    const stem = name.slice(0, -'.json'.length)
    try {
      const group = await readGroup(store.home, stem)
      if (!group) continue
      if (group.group !== stem)
        throw new TrainingError(
          `${join(ablationsDir(store.home), name)} says it is group "${group.group}": rename one to match`,
        )
      groups.push(ablationSummary(group, await groupRuns(store, group)))
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error))
    }
  }
  groups.sort((a, b) => b.createdAt.localeCompare(a.createdAt))
  return { groups, problems }
}

/**
 * Trains every missing cell of the ablation, one run at a time (`train` trains or resumes one run and
 * resolves with how it ended), then returns the table. A cell that fails is reported in the table's
 * `pending` list and the others go on; a cell that was stopped ends the ablation there (`stoppedAt`).
 */
export async function runAblation(
  store: RunStore,
  options: AblationOptions,
  train: (runId: string, fresh: boolean, cell: string) => Promise<RunMeta>,
): Promise<{ group: AblationGroup; table: AblationTable; stoppedAt: string | null }> {
  const name = groupName(options)
  const seeds = Array.from({ length: options.seeds }, (_, i) => i + (options.firstSeed ?? 1))
  let group: AblationGroup | null = await readGroup(store.home, name)
  if (group) {
    if (
      group.dataset !== options.dataset ||
      group.preset !== options.preset ||
      group.engine !== options.engine
    )
      throw new TrainingError(
        `ablation group ${name} was run on ${group.dataset}, ${group.preset}, ${group.engine}: name another with --group`,
      )
    if (JSON.stringify(group.set) !== JSON.stringify(options.set))
      throw new TrainingError(
        `ablation group ${name} was run with other overrides (${group.set.join(' ') || 'none'}): every row shares one budget, so name another group with --group`,
      )
    group = {
      ...group,
      rows: [...new Set([...group.rows, ...options.rows])],
      downsample: [...new Set([...group.downsample, ...options.downsample])],
      seeds: [...new Set([...group.seeds, ...seeds])].sort((a, b) => a - b),
    }
  } else {
    group = {
      version: 1,
      group: name,
      dataset: options.dataset,
      preset: options.preset,
      engine: options.engine,
      rows: options.rows,
      downsample: options.downsample,
      seeds,
      set: options.set,
      runs: {},
      createdAt: new Date().toISOString(),
    }
  }
  group = await saveGroup(store.home, group)
  let stoppedAt: string | null = null
  cells: for (const seed of seeds) {
    for (const row of options.rows) {
      for (const downsample of options.downsample) {
        const key = cellKey(row, downsample, seed)
        const existing: string | undefined = group.runs[key]
        const run: RunMeta | null = existing ? await store.read(existing).catch(() => null) : null
        if (run?.status === 'finished') continue
        let runId: string | undefined = run?.id
        if (!runId) {
          const created = await createRun(store, {
            dataset: options.dataset,
            preset: options.preset,
            pipeline: row,
            downsample,
            seed,
            engine: options.engine,
            set: options.set,
            name: `ablation ${name}: ${row}, ${downsample} downsample, seed ${seed}`,
          })
          runId = created.id
          group = await saveGroup(store.home, { ...group, runs: { ...group.runs, [key]: runId } })
        }
        // A failed cell is recorded in its run and listed as pending, and the others go on; a stopped or
        // interrupted one (Ctrl+C, SIGTERM, a killed worker) ends the ablation: the user asked it to stop.
        const ended = await train(runId, !run, key).catch(() => null)
        if (ended?.status === 'stopped' || ended?.status === 'interrupted') {
          stoppedAt = key
          break cells
        }
      }
    }
  }
  group = (await readGroup(store.home, name)) ?? group
  return { group, table: await groupTable(store, group), stoppedAt }
}
