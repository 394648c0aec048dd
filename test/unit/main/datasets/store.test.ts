import { spawnSync } from 'node:child_process'
import { mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ImportCancelledError } from '../../../../src/main/datasets/errors'
import { importDataset } from '../../../../src/main/datasets/import'
import { inspectDataset } from '../../../../src/main/datasets/inspect'
import { listDatasets, readManifest, removeDataset, renameDataset } from '../../../../src/main/datasets/store'
import { ImportProgress } from '../../../../src/shared/datasets'
import { writeCifarFolder, writeIdxSet, writeImageFolder } from '../../../fixtures/datasets'
import { storeEntries, useTempDirs } from './helpers'

const tempDir = useTempDirs()

describe('dataset store', () => {
  it('lists, renames, inspects and deletes datasets', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeIdxSet(source, { train: 12, test: 6, rows: 4, cols: 4, classes: 3 })
    const a = (await importDataset(source, { home, name: 'Same' })).manifest
    const b = (await importDataset(source, { home, name: 'Same' })).manifest
    expect([a.id, b.id]).toEqual(['same', 'same-2'])
    expect(b.source.sha256).toBe(a.source.sha256)

    await mkdir(join(home, 'datasets', 'broken'))
    await writeFile(join(home, 'datasets', 'broken', 'manifest.json'), '{"version": 2}')
    const listing = await listDatasets(home)
    expect(listing.datasets.map((d) => d.id)).toEqual(['same', 'same-2'])
    expect(listing.problems).toEqual([
      { id: 'broken', reason: expect.stringMatching(/manifest\.json: invalid manifest/) },
    ])

    await renameDataset('same-2', 'Second copy', home)
    expect((await readManifest('same-2', home)).name).toBe('Second copy')

    const samples = await tempDir()
    const inspection = await inspectDataset('same', { home, samplesDir: samples })
    expect(inspection.classes).toEqual([
      { name: '0', train: 4, test: 2 },
      { name: '1', train: 4, test: 2 },
      { name: '2', train: 4, test: 2 },
    ])
    expect((await readdir(samples)).sort()).toEqual(['0-0-0.png', '1-1-1.png', '2-2-2.png'])

    await removeDataset('same', home)
    expect((await listDatasets(home)).datasets.map((d) => d.id)).toEqual(['same-2'])
    await expect(removeDataset('same', home)).rejects.toThrow(/no dataset with id "same"/)
    await expect(removeDataset('../x', home)).rejects.toThrow(/is not a dataset id/)
    expect(await storeEntries(home)).toEqual(['broken', 'same-2'])
  })

  it('reports progress events that match the shared schema', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeCifarFolder(source, 'cifar10', { train: 300, test: 100 })
    const events: ImportProgress[] = []
    await importDataset(source, { home, onProgress: (event) => events.push(event) })
    for (const event of events) ImportProgress.parse(event)
    const last = events.at(-1)!
    expect(last.phase).toBe('finishing')
    expect(last.itemsDone).toBe(1600)
    expect(last.bytesDone).toBe(last.bytesTotal)
  })

  it('clears what killed imports and deletions left, but not a running import of another process', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeIdxSet(source, { train: 6, test: 3, rows: 4, cols: 4, classes: 3 })
    // The pid of a process that has exited: its import folder is abandoned.
    const gone = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString()
    const datasets = join(home, 'datasets')
    await mkdir(join(datasets, `.tmp-${gone}-abandoned`), { recursive: true })
    await mkdir(join(datasets, '.tmp-rm-old-1234'))
    await mkdir(join(datasets, `.tmp-${process.ppid}-running`))
    await importDataset(source, { home, name: 'fresh' })
    expect(await storeEntries(home)).toEqual([`.tmp-${process.ppid}-running`, 'fresh'])
  })

  it('cancels an import and leaves nothing behind', async () => {
    const home = await tempDir()
    const source = await tempDir()
    await writeCifarFolder(source, 'cifar10', { train: 2000, test: 500 })
    const controller = new AbortController()
    const seen: number[] = []
    const running = importDataset(source, {
      home,
      signal: controller.signal,
      onProgress: (event) => {
        seen.push(event.itemsDone)
        if (event.itemsDone > 0) controller.abort()
      },
    })
    await expect(running).rejects.toBeInstanceOf(ImportCancelledError)
    expect(seen.some((n) => n > 0)).toBe(true)
    expect(await storeEntries(home)).toEqual([])

    const folder = await tempDir()
    await writeImageFolder(folder, ['a', 'b'], [20, 20], { width: 8, height: 8 })
    const second = new AbortController()
    second.abort()
    await expect(importDataset(folder, { home, signal: second.signal })).rejects.toThrow('import cancelled')
    expect(await storeEntries(home)).toEqual([])
  })
})
