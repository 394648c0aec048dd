import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach } from 'vitest'

/** A fresh temp folder per call, removed after the test. */
export function useTempDirs(): () => Promise<string> {
  const made: string[] = []
  afterEach(async () => {
    await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
  })
  return async () => {
    const dir = await mkdtemp(join(tmpdir(), 'r2b-datasets-'))
    made.push(dir)
    return dir
  }
}

/** Everything in the datasets dir, temp folders included: what "the store is unchanged" compares. */
export async function storeEntries(home: string): Promise<string[]> {
  try {
    return (await readdir(join(home, 'datasets'))).sort()
  } catch {
    return []
  }
}
