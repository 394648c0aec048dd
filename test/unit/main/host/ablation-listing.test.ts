import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { AblationListing } from '../../../../src/shared/api'
import {
  cellKey,
  type AblationGroup,
  type AblationRow,
  type Downsample,
} from '../../../../src/shared/ablation'
import { makeRunConfig } from '../../../../src/shared/run-config'
import type { RunStatus } from '../../../../src/shared/runs'
import { WorkbenchHost } from '../../../../src/main/host/workbench-host'
import { ablationsDir } from '../../../../src/main/training/ablation'

let home: string
let host: WorkbenchHost

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-ablations-'))
  // Listing ablations reads the data home only: no training worker is ever started.
  host = new WorkbenchHost({
    appVersion: '0.0.0',
    versions: {},
    home,
    startWorker: () => {
      throw new Error('listing ablations must not start the worker')
    },
  })
})

afterEach(async () => {
  await host.stop()
  await rm(home, { recursive: true, force: true })
})

const listAblations = () => host.handleCall({ method: 'listAblations', args: [] }) as Promise<AblationListing>

/** A run of the store for one cell; a finished one gets test accuracies on its stages. */
async function cellRun(
  row: AblationRow,
  downsample: Downsample,
  seed: number,
  status: RunStatus,
  top1 = 0,
): Promise<string> {
  const config = makeRunConfig({ preset: 'cifar100-paper', pipeline: row, downsample, seed })
  const run = await host.store.create(config, { status, id: `abl-${row}-${downsample}-${seed}` })
  if (status === 'finished')
    await host.store.update(run.id, (meta) => ({
      ...meta,
      stages: meta.stages.map((s) => ({
        ...s,
        status: 'finished',
        epochsCompleted: s.epochs,
        testTop1: top1,
        testTop5: top1 + 0.2,
      })),
    }))
  return run.id
}

async function writeGroup(group: AblationGroup, file = `${group.group}.json`): Promise<void> {
  await mkdir(ablationsDir(home), { recursive: true })
  await writeFile(join(ablationsDir(home), file), JSON.stringify(group))
}

const baseGroup = (runs: Record<string, string>): AblationGroup => ({
  version: 1,
  group: 'cifar-paper',
  dataset: 'cifar100',
  preset: 'cifar100-paper',
  engine: 'torch',
  rows: ['sb', 'r2b'],
  downsample: ['real'],
  seeds: [1, 2],
  set: ['stages.0.epochs=1'],
  runs,
  createdAt: '2026-03-01T10:00:00.000Z',
})

describe('listAblations', () => {
  it('is empty without an ablations folder', async () => {
    expect(await listAblations()).toEqual({ groups: [], problems: [] })
  })

  it('lists a group with its table from the store’s runs: mean ± std over finished seeds, paper figures, progress', async () => {
    const runs = {
      [cellKey('sb', 'real', 1)]: await cellRun('sb', 'real', 1, 'finished', 0.5),
      [cellKey('sb', 'real', 2)]: await cellRun('sb', 'real', 2, 'finished', 0.6),
      [cellKey('r2b', 'real', 1)]: await cellRun('r2b', 'real', 1, 'finished', 0.7),
      [cellKey('r2b', 'real', 2)]: await cellRun('r2b', 'real', 2, 'running'),
    }
    await writeGroup(baseGroup(runs))

    const listing = await listAblations()
    expect(listing.problems).toEqual([])
    expect(listing.groups).toHaveLength(1)
    const [summary] = listing.groups
    expect(summary).toMatchObject({
      runs,
      set: ['stages.0.epochs=1'],
      cells: { finished: 3, total: 4 },
      training: [runs['r2b/real/2']],
      table: {
        group: 'cifar-paper',
        dataset: 'cifar100',
        preset: 'cifar100-paper',
        engine: 'torch',
        seeds: [1, 2],
        downsample: ['real'],
        pending: [{ cell: 'r2b/real/2', runId: runs['r2b/real/2'], status: 'running' }],
      },
    })
    const [sb, r2b] = summary!.table.rows
    expect(sb!.name).toBe('Strong baseline (SB)')
    expect(sb!.cells.real!.finished).toBe(2)
    expect(sb!.cells.real!.s2.top1!.mean).toBeCloseTo(0.55)
    expect(sb!.cells.real!.s2.top1!.std).toBeCloseTo(Math.sqrt(0.005))
    expect(sb!.cells.real!.s1.top5!.n).toBe(2)
    expect(sb!.cells.real!.paper!.s1.top1).toBeCloseTo(0.721)
    expect(r2b!.cells.real!.s2.top1).toEqual({ mean: 0.7, std: null, n: 1 })
    expect(r2b!.cells.binary).toBeUndefined()
  })

  it('reports a corrupt or foreign group file as a problem and still lists the good ones', async () => {
    await writeGroup(
      baseGroup({ [cellKey('sb', 'real', 1)]: await cellRun('sb', 'real', 1, 'finished', 0.5) }),
    )
    await writeFile(join(ablationsDir(home), 'broken.json'), '{ "version": 1, "gro')
    await writeFile(
      join(ablationsDir(home), 'wrong.json'),
      JSON.stringify({ ...baseGroup({}), rows: ['not-a-row'] }),
    )
    await writeGroup(baseGroup({}), 'renamed.json')

    const listing = await listAblations()
    expect(listing.groups.map((g) => g.table.group)).toEqual(['cifar-paper'])
    expect(listing.groups[0]!.cells).toEqual({ finished: 1, total: 4 })
    expect(listing.problems).toHaveLength(3)
    expect(listing.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/broken\.json is not valid JSON/),
        expect.stringMatching(/wrong\.json: .*rows/),
        expect.stringMatching(/renamed\.json says it is group "cifar-paper"/),
      ]),
    )
  })
})
