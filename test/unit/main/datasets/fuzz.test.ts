/**
 * Every importer over mutated real files: bit flips, truncations, insertions, overwritten header fields
 * and garbage, from a fixed seed. Each input must import (a valid, readable dataset) or be refused with one
 * line; neither path may leave anything behind in the store, hang, or throw anything but a user error.
 */
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import * as tar from 'tar'
import { describe, expect, it } from 'vitest'
import { mixSeed, mulberry32, randomInt, type Random } from '../../../../src/shared/random'
import { UserError } from '../../../../src/shared/errors'
import { importDataset } from '../../../../src/main/datasets/import'
import { openDataset } from '../../../../src/main/datasets/reader'
import { readManifest } from '../../../../src/main/datasets/store'
import { writeCifarArchive, writeCifarFolder, writeImageFolder } from '../../../fixtures/datasets'
import { writeFashionIdx } from '../../../fixtures/fashion-subset'
import { storeEntries, useTempDirs } from './helpers'

const tempDir = useTempDirs()

type Mutation = (bytes: Buffer, random: Random) => Buffer

/** The mutations, each a small, typical way for a file to be damaged or crafted. */
const MUTATIONS: Record<string, Mutation> = {
  flipBits: (bytes, random) => {
    const out = Buffer.from(bytes)
    for (let i = 0, n = 1 + randomInt(random, 8); i < n && out.length; i++)
      out[randomInt(random, out.length)]! ^= 1 << randomInt(random, 8)
    return out
  },
  truncate: (bytes, random) => bytes.subarray(0, randomInt(random, bytes.length)),
  insert: (bytes, random) => {
    const at = randomInt(random, bytes.length + 1)
    const junk = Buffer.from(Array.from({ length: 1 + randomInt(random, 64) }, () => randomInt(random, 256)))
    return Buffer.concat([bytes.subarray(0, at), junk, bytes.subarray(at)])
  },
  // The first 32 bytes hold every format's header: magic numbers, dimensions, counts, tar names.
  header: (bytes, random) => {
    const out = Buffer.from(bytes)
    const at = randomInt(random, Math.min(32, out.length))
    const value = [0, 0xff, 0x7f, 0x80, randomInt(random, 256)][randomInt(random, 5)]!
    for (let i = at; i < Math.min(at + 4, out.length); i++) out[i] = value
    return out
  },
  garbage: (bytes, random) =>
    Buffer.from(
      Array.from({ length: randomInt(random, Math.max(2, bytes.length)) }, () => randomInt(random, 256)),
    ),
}

interface Corpus {
  name: string
  /** Builds the pristine input under `dir`; returns the path to import and the files to mutate. */
  build(dir: string): Promise<{ path: string; files: string[] }>
}

const CORPORA: Corpus[] = [
  {
    name: 'IDX (real Fashion-MNIST images, gzipped and plain)',
    async build(dir) {
      await writeFashionIdx(dir, { train: 3, test: 2 })
      const names = (await readdir(dir)).sort()
      // Half of the files gzipped, as MNIST ships them.
      for (const name of names.slice(0, 2)) {
        await writeFile(join(dir, `${name}.gz`), gzipSync(await readFile(join(dir, name))))
        await rm(join(dir, name))
      }
      return { path: dir, files: (await readdir(dir)).map((n) => join(dir, n)) }
    },
  },
  {
    name: 'CIFAR-10 folder',
    async build(dir) {
      const data = await writeCifarFolder(dir, 'cifar10', { train: 4, test: 4 })
      return { path: data, files: (await readdir(data)).map((n) => join(data, n)) }
    },
  },
  {
    name: 'CIFAR-100 archive (.tar.gz)',
    async build(dir) {
      const file = join(dir, 'cifar-100-binary.tar.gz')
      await writeCifarArchive(file, 'cifar100', { train: 6, test: 3 })
      return { path: file, files: [file] }
    },
  },
  {
    name: 'CIFAR-10 archive (plain .tar: headers reachable by the mutations)',
    async build(dir) {
      const staging = join(dir, 'staging')
      const data = await writeCifarFolder(staging, 'cifar10', { train: 2, test: 2 })
      const file = join(dir, 'cifar-10-binary.tar')
      await tar.c({ file, cwd: staging, portable: true }, [data.slice(staging.length + 1)])
      await rm(staging, { recursive: true })
      return { path: file, files: [file] }
    },
  },
  {
    name: 'image folder (PNG, JPEG, WebP)',
    async build(dir) {
      await writeImageFolder(dir, ['a', 'b'], [3, 3], {
        width: 12,
        height: 10,
        kinds: ['png', 'jpg', 'webp'],
      })
      const files: string[] = []
      for (const c of ['a', 'b']) for (const n of await readdir(join(dir, c))) files.push(join(dir, c, n))
      return { path: dir, files }
    },
  },
]

const ROUNDS = 120

describe('importer fuzzing', () => {
  for (const [corpusIndex, corpus] of CORPORA.entries()) {
    it(`${corpus.name}: ${ROUNDS} mutated inputs each import whole or are refused in one line`, async () => {
      const home = await tempDir()
      const pristine = await tempDir()
      const built = await corpus.build(pristine)
      const random = mulberry32(mixSeed(2026, corpusIndex))
      const outcomes = { imported: 0, refused: 0 }
      const mutationNames = Object.keys(MUTATIONS)
      for (let round = 0; round < ROUNDS; round++) {
        // A fresh copy of the pristine input, with one file mutated.
        const work = await tempDir()
        const copyTree = async (from: string, to: string): Promise<void> => {
          await mkdir(to, { recursive: true })
          for (const entry of await readdir(from, { withFileTypes: true })) {
            if (entry.isDirectory()) await copyTree(join(from, entry.name), join(to, entry.name))
            else await copyFile(join(from, entry.name), join(to, entry.name))
          }
        }
        await copyTree(pristine, work)
        const target = built.files[randomInt(random, built.files.length)]!.replace(pristine, work)
        const mutation = mutationNames[randomInt(random, mutationNames.length)]!
        await writeFile(target, MUTATIONS[mutation]!(await readFile(target), random))
        const path = built.path.replace(pristine, work)
        const what = `round ${round}: ${mutation} of ${target.slice(work.length + 1)}`
        try {
          const { manifest } = await importDataset(path, { home, size: 8 })
          outcomes.imported++
          // What was stored is a dataset that reads back.
          expect(await readManifest(manifest.id, home), what).toEqual(manifest)
          const reader = await openDataset(manifest.id, home)
          expect(reader.size('train') + reader.size('test'), what).toBe(
            manifest.splits.train + manifest.splits.test,
          )
          await reader.close()
        } catch (error) {
          outcomes.refused++
          expect(error, `${what}: ${(error as Error).stack}`).toBeInstanceOf(UserError)
          expect((error as Error).message, what).not.toContain('\n')
        }
        // Nothing half-written stays behind, whichever way it went.
        expect(
          (await storeEntries(home)).filter((e) => e.startsWith('.')),
          what,
        ).toEqual([])
      }
      console.log(
        `fuzz ${corpus.name}: ${ROUNDS} inputs, ${outcomes.imported} imported, ${outcomes.refused} refused`,
      )
      expect(outcomes.imported + outcomes.refused).toBe(ROUNDS)
    })
  }
})
