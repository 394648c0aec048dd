/**
 * Following a run folder that another process writes (the PyTorch engine, a job on another machine over
 * shared storage): its log and snapshot index are read from where the last read stopped, whole lines only,
 * so a line being written is picked up once it is complete; run.json is re-read when it changes. What is
 * read is validated like any other read of the store, and announced in order.
 */
import { open, stat } from 'node:fs/promises'
import { join } from 'node:path'
import {
  StoredLogLine,
  StoredSnapshotIndexEntry,
  type LogLine,
  type RunMeta,
  type SnapshotIndexEntry,
} from '../../shared/runs'
import { firstIssue } from '../../shared/errors'
import type { z } from 'zod'
import { LOG_FILE, RUN_FILE, RunStoreError, type RunStore } from './run-store'

export type Followed =
  | { type: 'record'; record: LogLine }
  | { type: 'snapshot'; entry: SnapshotIndexEntry }
  | { type: 'run'; run: RunMeta }

/** The complete lines appended to a file since `offset`; a torn last line waits for the next read. */
class LineTail<T> {
  private offset = 0
  private lineNumber = 0

  constructor(
    private readonly file: string,
    private readonly schema: z.ZodType<T>,
  ) {}

  /** Skips what the file holds now: only lines appended later are read. */
  async skipToEnd(): Promise<void> {
    const info = await stat(this.file).catch(() => null)
    this.offset = info?.size ?? 0
  }

  async read(): Promise<T[]> {
    let handle
    try {
      handle = await open(this.file, 'r')
    } catch {
      return [] // not written yet
    }
    try {
      const { size } = await handle.stat()
      // Rewritten shorter (a resume rolled it back): start over, and let the reader see it again.
      if (size < this.offset) {
        this.offset = 0
        this.lineNumber = 0
      }
      if (size === this.offset) return []
      const buffer = Buffer.alloc(size - this.offset)
      await handle.read(buffer, 0, buffer.length, this.offset)
      const end = buffer.lastIndexOf(0x0a)
      if (end < 0) return []
      this.offset += end + 1
      const out: T[] = []
      for (const line of buffer.subarray(0, end).toString('utf8').split('\n')) {
        this.lineNumber++
        if (line === '') continue
        let json: unknown
        try {
          json = JSON.parse(line)
        } catch {
          throw new RunStoreError(`${this.file}: line ${this.lineNumber} is not JSON`)
        }
        const parsed = this.schema.safeParse(json)
        if (!parsed.success)
          throw new RunStoreError(
            `${this.file}: line ${this.lineNumber} is not a valid record (${firstIssue(parsed.error)})`,
          )
        out.push(parsed.data)
      }
      return out
    } finally {
      await handle.close()
    }
  }
}

export class RunFollower {
  private readonly log: LineTail<LogLine>
  private readonly index: LineTail<SnapshotIndexEntry>
  private runStamp = ''
  private timer: NodeJS.Timeout | null = null
  private reading: Promise<void> = Promise.resolve()

  constructor(
    private readonly store: RunStore,
    readonly runId: string,
    private readonly emit: (change: Followed) => void,
    private readonly onError: (error: Error) => void = () => {},
  ) {
    const dir = store.dir(runId)
    this.log = new LineTail(join(dir, LOG_FILE), StoredLogLine)
    this.index = new LineTail(join(dir, 'snapshots', 'index.jsonl'), StoredSnapshotIndexEntry)
  }

  /** Reads what is new now: run.json when it changed, then new log lines, then new snapshot entries. */
  poll(): Promise<void> {
    this.reading = this.reading.then(async () => {
      const dir = this.store.dir(this.runId)
      const info = await stat(join(dir, RUN_FILE)).catch(() => null)
      const stamp = info ? `${info.mtimeMs}:${info.size}` : ''
      if (stamp && stamp !== this.runStamp) {
        this.runStamp = stamp
        const run = await this.store.read(this.runId).catch((error: unknown) => {
          // Replaced atomically, so a read fails only on a bad file: say so, and try again on the next change.
          this.onError(error as Error)
          return null
        })
        if (run) this.emit({ type: 'run', run })
      }
      for (const record of await this.log.read()) this.emit({ type: 'record', record })
      for (const entry of await this.index.read()) this.emit({ type: 'snapshot', entry })
    })
    return this.reading.catch((error: unknown) => this.onError(error as Error))
  }

  /**
   * Polls every `intervalMs` until stopped. `fromEnd`: what the files hold now is known already (a trainer
   * that has just rolled the run back); only what is appended from here is announced.
   */
  async start(options: { intervalMs?: number; fromEnd?: boolean } = {}): Promise<this> {
    if (options.fromEnd) {
      await this.log.skipToEnd()
      await this.index.skipToEnd()
    }
    if (!this.timer) this.timer = setInterval(() => void this.poll(), options.intervalMs ?? 250)
    await this.poll()
    return this
  }

  /** Stops polling after one last read, so nothing written before the stop is missed. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = null
    await this.poll()
  }
}
