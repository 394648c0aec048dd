import { statSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { Inspection, SnapshotData, WorkbenchEvent } from '../../../../src/shared/api'
import { decodeFloat32, decodeUint8 } from '../../../../src/shared/binary'
import type { DatasetManifest } from '../../../../src/shared/datasets'
import type { RunMeta } from '../../../../src/shared/runs'
import { WorkbenchHost } from '../../../../src/main/host/workbench-host'
import { launchWorkerProcess } from '../../../../src/main/training/worker-client'
import { writeIdxSet } from '../../../fixtures/datasets'
import { importFashionSubset } from '../../../fixtures/fashion-subset'

let home: string
let host: WorkbenchHost
let dataset: DatasetManifest
const events: WorkbenchEvent[] = []

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-host-'))
  dataset = await importFashionSubset(home, { train: 20, test: 4 })
  host = new WorkbenchHost({
    appVersion: '1.2.3',
    versions: { node: process.versions.node },
    home,
    startWorker: () => launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true }),
  })
  host.api.onEvent((e) => events.push(e))
  host.start()
})

afterAll(async () => {
  await host?.stop()
})

function call<T>(method: string, ...args: unknown[]): Promise<T> {
  return host.handleCall({ method, args }) as Promise<T>
}

function nextEvent(match: (e: WorkbenchEvent) => boolean): Promise<WorkbenchEvent> {
  const seen = events.find(match)
  if (seen) return Promise.resolve(seen)
  return new Promise((resolve) => {
    const off = host.api.onEvent((e) => {
      if (match(e)) {
        off()
        resolve(e)
      }
    })
  })
}

/** The R2B chain, tiny: one epoch of two steps per stage. */
const tiny = [
  'model.width=0.0625',
  'data.testLimit=20',
  'eval.probes=2',
  'eval.gateSubset=10',
  'eval.batchSize=20',
  ...[0, 1, 2, 3].flatMap((i) => [
    `stages.${i}.epochs=1`,
    `stages.${i}.stepsPerEpoch=2`,
    `stages.${i}.batchSize=8`,
  ]),
]

describe('the workbench host', () => {
  it('answers about with the data dir, and announces the worker backend as an event', async () => {
    const backend = await nextEvent((e) => e.type === 'backend')
    expect(backend).toMatchObject({ type: 'backend', backend: { backend: 'wasm' }, error: null })
    expect(await call('about')).toMatchObject({
      appVersion: '1.2.3',
      dataHome: home,
      backend: { backend: 'wasm' },
      canPickFiles: false,
    })
  })

  it('refuses malformed calls, unknown methods and bad arguments before anything runs', async () => {
    await expect(host.handleCall('about')).rejects.toThrow(/invalid call/)
    await expect(call('deleteEverything')).rejects.toThrow(/unknown method "deleteEverything"/)
    await expect(call('about', 'extra')).rejects.toThrow(/invalid arguments to about/)
    await expect(call('removeDataset', '../../etc')).rejects.toThrow(
      /invalid arguments to removeDataset.*dataset id/,
    )
    await expect(call('runHistory', 'x/../../y')).rejects.toThrow(/invalid arguments to runHistory/)
    await expect(call('readImages', dataset.id, 'test', [-1])).rejects.toThrow(/invalid arguments/)
    await expect(call('readSnapshot', 'run-1', 'weights', 'teacher', 0)).rejects.toThrow(/invalid arguments/)
    await expect(call('startRun', { dataset: dataset.id, pipeline: 'nonsense' })).rejects.toThrow(
      /invalid arguments to startRun: 0.pipeline/,
    )
  })

  it('lists datasets and returns sample pixels per class, base64-encoded', async () => {
    const listing = await call<{ datasets: DatasetManifest[] }>('listDatasets')
    expect(listing.datasets.map((d) => d.id)).toEqual([dataset.id])
    const samples = await call<{ labels: number[]; pixels: string; shape: number[] }>(
      'datasetSamples',
      dataset.id,
      2,
    )
    expect(samples.labels).toHaveLength(20)
    expect(new Set(samples.labels).size).toBe(10)
    const pixels = decodeUint8(samples.pixels)
    expect(pixels.length).toBe(20 * 28 * 28)
    expect(Math.max(...pixels)).toBeGreaterThan(0)
    await expect(call('readImages', dataset.id, 'test', [40])).rejects.toThrow(/outside the test split/)

    // Choosing images by class: the first test images of class 3 are of class 3, in order.
    const ofClass = await call<number[]>('findImages', dataset.id, 'test', 3, 2)
    expect(ofClass).toHaveLength(2)
    expect(ofClass[0]).toBeLessThan(ofClass[1]!)
    const found = await call<{ labels: number[] }>('readImages', dataset.id, 'test', ofClass)
    expect(found.labels).toEqual([3, 3])
    await expect(call('findImages', dataset.id, 'test', 10, 1)).rejects.toThrow(/has 10 classes: no class 10/)
  })

  it('imports through main with progress and a result event; a bad path fails with a readable error', async () => {
    const source = await mkdtemp(join(tmpdir(), 'r2b-host-idx-'))
    await writeIdxSet(source, { train: 30, test: 10, rows: 8, cols: 8, classes: 3 })
    const { importId } = await call<{ importId: string }>('importDataset', {
      path: source,
      name: 'Small IDX',
    })
    const done = await nextEvent(
      (e) => e.type === 'import' && e.importId === importId && e.state !== 'progress',
    )
    expect(done).toMatchObject({ state: 'done', dataset: { name: 'Small IDX' } })
    const renamed = await call<DatasetManifest>(
      'renameDataset',
      (done as { dataset: DatasetManifest }).dataset.id,
      'Renamed',
    )
    expect(renamed.name).toBe('Renamed')
    await call('removeDataset', renamed.id)
    expect((await call<{ datasets: unknown[] }>('listDatasets')).datasets).toHaveLength(1)

    const bad = await call<{ importId: string }>('importDataset', { path: join(source, 'missing') })
    const failed = await nextEvent(
      (e) => e.type === 'import' && e.importId === bad.importId && e.state !== 'progress',
    )
    expect(failed).toMatchObject({ state: 'failed', dataset: null })
    expect((failed as { error: string }).error.length).toBeGreaterThan(5)
  })

  it('starts a run, streams its records and snapshots live, and serves the same history, maps and gates from disk', async () => {
    await expect(call('startRun', { dataset: 'no-such-dataset' })).rejects.toThrow(/no-such-dataset/)
    const run = await call<RunMeta>('startRun', { dataset: dataset.id, pipeline: 'r2b', set: tiny })
    expect((await call<{ runs: RunMeta[] }>('listRuns')).runs.map((r) => r.id)).toContain(run.id)
    await nextEvent((e) => e.type === 'run' && e.run.id === run.id && e.run.status === 'finished')
    const live = events.filter((e) => e.type === 'record' && e.runId === run.id)
    expect(live.some((e) => e.type === 'record' && e.record.kind === 'step')).toBe(true)
    expect(events.some((e) => e.type === 'snapshot' && e.runId === run.id && e.kind === 'attention')).toBe(
      true,
    )

    const history = await call<{ log: { kind: string }[]; snapshots: { kind: string; stage: string }[] }>(
      'runHistory',
      run.id,
    )
    expect(history.log.filter((l) => l.kind === 'epoch')).toHaveLength(4)
    const attention = await call<SnapshotData>('readSnapshot', run.id, 'attention', 'tanh', 1)
    if (attention.kind !== 'attention') throw new Error('expected an attention snapshot')
    expect(attention.points.filter((p) => p.teacher !== null)).toHaveLength(8)
    for (const array of attention.points.flatMap((p) => [p.student, p.teacher!])) {
      const values = decodeFloat32(array.data)
      expect(values.length).toBe(array.shape.reduce((a, b) => a * b, 1))
      expect(Math.max(...values)).toBeGreaterThan(Math.min(...values))
    }
    const gates = await call<SnapshotData>('readSnapshot', run.id, 'gates', 'bnn', 1)
    expect(gates.kind === 'gates' && gates.gates.length).toBeGreaterThan(0)

    const inspection = await call<Inspection>('inspectImage', {
      run: run.id,
      stage: 'ban',
      epochsCompleted: 1,
      image: 3,
    })
    expect(inspection.points).toHaveLength(8)
    expect(inspection.points.every((p) => p.teacher !== null)).toBe(true)
    expect(decodeFloat32(inspection.logits)).toHaveLength(10)
    expect(inspection.gates.length).toBeGreaterThan(0)
    await expect(
      call('inspectImage', { run: run.id, stage: 'ban', epochsCompleted: 6, image: 0 }),
    ).rejects.toThrow(/stage ban has checkpoints after epochs 1, not 6/)
    await expect(call('resumeRun', run.id)).rejects.toThrow(/finished/)

    const exported = await call<{
      file: string
      fileBytes: number
      minimumBytes: number
      float32Bytes: number
    }>('exportStage', run.id, 'bnn')
    expect(statSync(exported.file).size).toBe(exported.fileBytes)
    expect(exported.fileBytes).toBeGreaterThan(exported.minimumBytes)
    expect(exported.float32Bytes).toBeGreaterThan(exported.fileBytes)
    await expect(call('exportStage', run.id, 'ban')).rejects.toThrow(/not fully binary|fully binary/)
  })

  it('summarises a stage model of a config', async () => {
    const { makeRunConfig } = await import('../../../../src/shared/run-config')
    const config = makeRunConfig({ set: ['model.width=0.0625'] })
    const summary = await call<{ totals: { binaryParams: number; params: number } }>(
      'modelSummary',
      config,
      'bnn',
    )
    expect(summary.totals.binaryParams).toBeGreaterThan(0)
    expect(summary.totals.params).toBeGreaterThan(summary.totals.binaryParams / 2)
    await expect(call('modelSummary', config, 'nope')).rejects.toThrow(/no stage "nope"/)
  })
})
