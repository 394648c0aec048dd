/**
 * A lock across processes: a file names the process that holds it and what for. A lock whose process is gone
 * (killed, crashed, power lost) is stale and taken over. One run trains at a time per data directory; one UI
 * build runs at a time per checkout.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { dirname, join } from 'node:path'
import { z } from 'zod'
import { isAlive } from './process-alive'

// `host`: the machine of the holder (a lock on shared storage may be held by a cluster node, whose pid means
// nothing here). Written by the PyTorch engine when it takes the lock itself; absent in older lock files.
const LockFile = z.object({ pid: z.int(), what: z.string(), since: z.string(), host: z.string().optional() })
export type LockInfo = z.infer<typeof LockFile>

export class ProcessLock {
  constructor(private readonly file: string) {}

  /** The live holder, if any. */
  async holder(): Promise<LockInfo | null> {
    try {
      const info = LockFile.parse(JSON.parse(await readFile(this.file, 'utf8')))
      // A holder on another machine cannot be checked from here: held until that machine releases it.
      if (info.host !== undefined && info.host !== hostname()) return info
      return isAlive(info.pid) ? info : null
    } catch {
      return null
    }
  }

  /** Takes the lock for this process, or returns the live holder that prevents it. */
  async acquire(what: string): Promise<LockInfo | null> {
    await mkdir(dirname(this.file), { recursive: true })
    const info: LockInfo = { pid: process.pid, what, since: new Date().toISOString(), host: hostname() }
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        await writeFile(this.file, JSON.stringify(info), { flag: 'wx' })
        return null
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
        const holder = await this.holder()
        if (holder && holder.pid !== process.pid) return holder
        await rm(this.file, { force: true }) // stale, or ours from a previous run in this process
      }
    }
    return this.holder()
  }

  async release(): Promise<void> {
    const holder = await this.holder()
    if (holder?.pid === process.pid) await rm(this.file, { force: true })
  }
}

/** The lock on training in a data directory (`runs/`); its holder's `what` is the run id. */
export const trainingLock = (runsDir: string) => new ProcessLock(join(runsDir, '.training.lock'))

/** Why this process cannot train now, and what to do about it. */
export const trainingBusy = (holder: LockInfo) =>
  holder.host !== undefined && holder.host !== hostname()
    ? `a process on ${holder.host} (pid ${holder.pid}) is training run ${holder.what}: wait for it to finish, ` +
      `or stop it with \`npm run r2b -- stop ${holder.what}\` (if that job has ended without releasing it, delete .training.lock in its runs folder)`
    : `another workbench process (pid ${holder.pid}) is training run ${holder.what}: wait for it to finish, ` +
      `or stop it with \`npm run r2b -- stop ${holder.what}\``
