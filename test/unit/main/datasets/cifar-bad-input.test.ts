import { symlink, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { describe, expect, it } from 'vitest'
import { importDataset } from '../../../../src/main/datasets/import'
import type { ImportOptions } from '../../../../src/main/datasets/importer'
import { listDatasets } from '../../../../src/main/datasets/store'
import {
  cifarRecords,
  rawTar,
  rawTarGz,
  writeCifarArchive,
  writeCifarFolder,
} from '../../../fixtures/datasets'
import { storeEntries, useTempDirs } from './helpers'

const tempDir = useTempDirs()

/** A store that already holds one dataset, so "unchanged" means more than "empty". */
async function populatedHome(): Promise<string> {
  const home = await tempDir()
  const source = await tempDir()
  await writeCifarFolder(source, 'cifar10', { train: 2, test: 2 })
  await importDataset(source, { home, name: 'existing' })
  return home
}

async function expectRefused(path: string, message: RegExp, options: ImportOptions = {}): Promise<void> {
  const home = await populatedHome()
  const before = await storeEntries(home)
  const error = await importDataset(path, { home, ...options }).then(
    () => null,
    (e: unknown) => e as Error,
  )
  expect(error?.message).toMatch(message)
  expect(error?.message).not.toContain('\n')
  expect(await storeEntries(home)).toEqual(before)
  expect((await listDatasets(home)).datasets.map((d) => d.id)).toEqual(['existing'])
}

describe('CIFAR bad input', () => {
  it('refuses a path that does not exist', async () => {
    const missing = join(await tempDir(), 'nope.tar.gz')
    await expectRefused(missing, /nope\.tar\.gz: does not exist/)
  })

  it('refuses a truncated record file in a folder before importing anything', async () => {
    const source = await tempDir()
    const dir = await writeCifarFolder(source, 'cifar10', { train: 3, test: 2 })
    await truncate(join(dir, 'data_batch_3.bin'), 3073 * 3 - 100)
    await expectRefused(
      source,
      /data_batch_3\.bin: 9119 bytes is not a whole number of 3073-byte CIFAR-10 records/,
    )
  })

  it('refuses a truncated record file inside an archive', async () => {
    const archive = join(await tempDir(), 'c.tar.gz')
    const data = cifarRecords('cifar10', 3)
    await writeFile(
      archive,
      rawTarGz([{ path: 'cifar-10-batches-bin/data_batch_1.bin', data: data.subarray(0, 5000) }]),
    )
    await expectRefused(
      archive,
      /data_batch_1\.bin: 5000 bytes is not a whole number of 3073-byte CIFAR-10 records/,
    )
  })

  it('refuses a truncated archive', async () => {
    const archive = join(await tempDir(), 'c.tar')
    const tar = rawTar([{ path: 'cifar-10-batches-bin/data_batch_1.bin', data: cifarRecords('cifar10', 4) }])
    await writeFile(archive, tar.subarray(0, 512 + 3073 * 2))
    await expectRefused(archive, /c\.tar: archive truncated/)
  })

  it('refuses a truncated gzip stream', async () => {
    const archive = join(await tempDir(), 'cifar-10-binary.tar.gz')
    await writeCifarArchive(archive, 'cifar10', { train: 3, test: 2 })
    const { readFile } = await import('node:fs/promises')
    const bytes = await readFile(archive)
    await writeFile(archive, bytes.subarray(0, bytes.length - 40))
    await expectRefused(archive, /cifar-10-binary\.tar\.gz: (corrupt or truncated gzip data|.*truncated)/)
  })

  it('refuses a label outside the class range', async () => {
    const source = await tempDir()
    const dir = await writeCifarFolder(source, 'cifar10', { train: 3, test: 2 })
    const data = cifarRecords('cifar10', 3)
    data[3073 * 2] = 10
    await writeFile(join(dir, 'data_batch_2.bin'), data)
    await expectRefused(source, /data_batch_2\.bin: record 2 has label 10, outside the 10 classes/)
  })

  it('refuses a CIFAR-100 coarse label outside the 20 superclasses', async () => {
    const source = await tempDir()
    const dir = await writeCifarFolder(source, 'cifar100', { train: 3, test: 2 })
    const data = cifarRecords('cifar100', 3)
    data[3074] = 25
    await writeFile(join(dir, 'train.bin'), data)
    await expectRefused(source, /train\.bin: record 1 has label 25, outside the 20 classes/, {
      labels: 'coarse',
    })
  })

  it('refuses an entry with an absolute path', async () => {
    const archive = join(await tempDir(), 'c.tar.gz')
    await writeFile(archive, rawTarGz([{ path: '/etc/data_batch_1.bin', data: cifarRecords('cifar10', 1) }]))
    await expectRefused(archive, /entry "\/etc\/data_batch_1\.bin" has an absolute path \(refused\)/)
  })

  it('refuses an entry with ".."', async () => {
    const archive = join(await tempDir(), 'c.tar.gz')
    await writeFile(
      archive,
      rawTarGz([{ path: 'cifar/../../data_batch_1.bin', data: cifarRecords('cifar10', 1) }]),
    )
    await expectRefused(archive, /entry "cifar\/\.\.\/\.\.\/data_batch_1\.bin" contains "\.\." \(refused\)/)
  })

  it('refuses symbolic and hard links', async () => {
    const archive = join(await tempDir(), 'c.tar.gz')
    await writeFile(
      archive,
      rawTarGz([{ path: 'cifar/data_batch_1.bin', type: '2', linkpath: '/etc/passwd' }]),
    )
    await expectRefused(archive, /entry "cifar\/data_batch_1\.bin" is a symbolic link \(refused\)/)
    await writeFile(archive, rawTarGz([{ path: 'cifar/test_batch.bin', type: '1', linkpath: 'cifar/x' }]))
    await expectRefused(archive, /entry "cifar\/test_batch\.bin" is a hard link \(refused\)/)
  })

  it('refuses an entry whose declared size is absurd', async () => {
    const archive = join(await tempDir(), 'c.tar.gz')
    await writeFile(
      archive,
      rawTarGz([{ path: 'cifar/train.bin', declaredSize: 8 * 1024 ** 3 - 1 }], { end: false }),
    )
    await expectRefused(
      archive,
      /entry "cifar\/train\.bin" declares 8589934591 bytes, over the 268435456-byte limit/,
    )
  })

  it('stops inflating an archive that unpacks to more than the limit', async () => {
    const archive = join(await tempDir(), 'bomb.tar.gz')
    // 48 MB of zeros in entries each under the entry limit: a few hundred kB compressed.
    const zeros = Buffer.alloc(16 * 1024 * 1024)
    await writeFile(archive, gzipSync(rawTar([0, 1, 2].map((i) => ({ path: `pad${i}.bin`, data: zeros })))))
    await expectRefused(archive, /bomb\.tar\.gz: unpacks to more than 33554432 bytes \(refused\)/, {
      limits: { maxArchiveBytes: 32 * 1024 * 1024 },
    })
  })

  it('refuses an archive with no CIFAR data', async () => {
    const archive = join(await tempDir(), 'c.tar.gz')
    await writeFile(archive, rawTarGz([{ path: 'readme.txt', data: Buffer.from('hello') }]))
    await expectRefused(archive, /c\.tar\.gz: no CIFAR training data/)
  })

  it('refuses a file that is not an archive', async () => {
    const archive = join(await tempDir(), 'c.tar.gz')
    await writeFile(archive, Buffer.from('this is not gzip'))
    await expectRefused(archive, /c\.tar\.gz: /)
  })

  it('refuses a folder with a symlinked data file only if it cannot be read', async () => {
    const source = await tempDir()
    const dir = await writeCifarFolder(source, 'cifar10', { train: 1, test: 1 })
    const { rm } = await import('node:fs/promises')
    await rm(join(dir, 'data_batch_5.bin'))
    await symlink(join(dir, 'missing.bin'), join(dir, 'data_batch_5.bin'))
    await expectRefused(source, /data_batch_5\.bin/)
  })

  it('refuses --format cifar100 for a CIFAR-10 archive', async () => {
    const archive = join(await tempDir(), 'cifar-10-binary.tar.gz')
    await writeCifarArchive(archive, 'cifar10', { train: 1, test: 1 })
    await expectRefused(archive, /data_batch_1\.bin: a CIFAR-10 file, but --format cifar100/, {
      format: 'cifar100',
    })
  })
})
