/**
 * The run store: everything a run produces, on disk before anyone is shown it.
 *
 *   runs/<id>/run.json             metadata and status (replaced atomically)
 *   runs/<id>/events.jsonl         metrics log, append-only; a torn last line (crash mid-write) is ignored
 *   runs/<id>/snapshots/index.jsonl + <stage>/e<epoch>-<kind>.bin   attention maps and gates (float32)
 *   runs/<id>/checkpoints/<stage>/e<epoch>/{manifest.json,data.bin}  weights + optimiser state, sha256-checked
 *
 * A checkpoint's line in the log is the commit point of its epoch: resuming rolls the log and the snapshot
 * index back to the last one, so an epoch interrupted halfway leaves no trace and is trained again once.
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { appendFile, mkdir, open, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { basename, join, resolve } from 'node:path'
import { payloadProblems, ReadCheckpointManifest, type Checkpoint } from '../../shared/checkpoint'
import { firstIssue, UserError } from '../../shared/errors'
import type { CheckpointRecord, LightRecord } from '../../shared/records'
import type { RunConfig } from '../../shared/run-config'
import {
  checkpointPath,
  RUN_FORMAT_VERSION,
  RunId,
  RunMeta,
  SnapshotIndexEntry,
  StoredLogLine,
  StoredRunMeta,
  StoredSnapshotIndexEntry,
  type CheckpointLine,
  type LogLine,
  type ResumedLine,
  type RunStatus,
} from '../../shared/runs'
import { decodeSnapshot, encodeSnapshot, type SnapshotRecord } from '../../shared/snapshots'
import { z } from 'zod'
import { writeFileAtomic } from '../atomic-write'
import { dataHome } from '../paths'
import { isAlive } from '../process-alive'
import { trainingLock } from '../process-lock'

export class RunStoreError extends UserError {
  override name = 'RunStoreError'
}

export const RUN_FILE = 'run.json'
export const LOG_FILE = 'events.jsonl'
const SNAPSHOT_INDEX = 'index.jsonl'

export function runsDir(home: string = dataHome()): string {
  return join(home, 'runs')
}

function readAttached(home: string): Map<string, string> {
  const file = join(home, ATTACHED_FILE)
  if (!existsSync(file)) return new Map()
  let parsed
  try {
    parsed = Attached.safeParse(JSON.parse(readFileSync(file, 'utf8')))
  } catch {
    throw new RunStoreError(`${file} is not valid JSON: remove it to forget the attached runs`)
  }
  if (!parsed.success)
    throw new RunStoreError(`${file}: ${firstIssue(parsed.error)}: remove it to forget the attached runs`)
  return new Map(Object.entries(parsed.data.runs).map(([id, dir]) => [id, resolve(dir)]))
}

/** Reads and validates one JSON file; every failure names the file, the field and what to do. */
async function readJson<T>(file: string, schema: z.ZodType<T>, what: string): Promise<T> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    throw new RunStoreError(`${file} is missing: ${what}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new RunStoreError(`${file} is not valid JSON (truncated or edited?): ${what}`)
  }
  const parsed = schema.safeParse(json)
  if (!parsed.success) throw new RunStoreError(`${file}: ${firstIssue(parsed.error)}: ${what}`)
  return parsed.data
}

/** Parses JSON lines; an unparsable or invalid *last* line is a torn write and is dropped, anywhere else an error. */
function parseLines<T>(text: string, schema: z.ZodType<T>, file: string): T[] {
  const raw = text.split('\n')
  const lines: T[] = []
  for (let i = 0; i < raw.length; i++) {
    const line = raw[i] as string
    const isLast = i === raw.length - 1 || (i === raw.length - 2 && raw[raw.length - 1] === '')
    if (line === '') continue
    let problem: string
    try {
      const parsed = schema.safeParse(JSON.parse(line))
      if (parsed.success) {
        lines.push(parsed.data)
        continue
      }
      problem = firstIssue(parsed.error)
    } catch {
      problem = 'not JSON'
    }
    if (isLast && !text.endsWith('\n')) break
    throw new RunStoreError(`${file}: line ${i + 1} is not a valid record (${problem})`)
  }
  return lines
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

export function newRunId(config: RunConfig, now: Date): string {
  const stamp = now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')
  return `${stamp}-${config.pipeline.replace(/[^a-z0-9]+/g, '-')}-${randomBytes(2).toString('hex')}`
}

/** `<home>/attached.json`: run folders elsewhere (shared storage, another machine's output) shown here. */
const ATTACHED_FILE = 'attached.json'
const Attached = z.object({ version: z.literal(1), runs: z.record(RunId, z.string().min(1)) })

export class RunStore {
  /** Attached runs by id: folders written by another process or machine, followed read-only. */
  private attached: Map<string, string>

  constructor(readonly home: string = dataHome()) {
    this.attached = readAttached(home)
  }

  get root(): string {
    return runsDir(this.home)
  }

  dir(id: string): string {
    const parsed = RunId.safeParse(id)
    if (!parsed.success)
      throw new RunStoreError(`"${id}" is not a run id (${parsed.error.issues[0]?.message})`)
    return this.attached.get(id) ?? join(this.root, id)
  }

  /** Whether a run is attached: another process or machine writes it, so this one only reads it. */
  isAttached(id: string): boolean {
    return this.attached.has(id)
  }

  /**
   * Shows a run folder that lives elsewhere (shared storage a cluster job writes, a copy from another
   * machine) alongside this store's runs, read-only. Its run.json must be readable; its id must be new here.
   */
  async attach(folder: string): Promise<RunMeta> {
    const dir = resolve(folder)
    const meta = await readJson(
      join(dir, RUN_FILE),
      StoredRunMeta,
      `${dir} is not a run folder a workbench wrote`,
    )
    if (basename(dir) !== meta.id)
      throw new RunStoreError(
        `${join(dir, RUN_FILE)} says it is run "${meta.id}", but its folder is "${basename(dir)}"`,
      )
    const known = this.attached.get(meta.id)
    if (known && known !== dir) throw new RunStoreError(`run ${meta.id} is attached already, from ${known}`)
    if (!known && existsSync(join(this.root, meta.id, RUN_FILE)))
      throw new RunStoreError(`run ${meta.id} is in this store already: it cannot be attached as well`)
    this.attached.set(meta.id, dir)
    await this.saveAttached()
    return meta
  }

  /** Forgets an attached run; its folder is left as it is. */
  async detach(id: string): Promise<void> {
    if (!this.attached.delete(id)) throw new RunStoreError(`run ${id} is not attached`)
    await this.saveAttached()
  }

  private async saveAttached(): Promise<void> {
    await mkdir(this.home, { recursive: true })
    const file: z.infer<typeof Attached> = { version: 1, runs: Object.fromEntries(this.attached) }
    await writeFileAtomic(join(this.home, ATTACHED_FILE), `${JSON.stringify(file, null, 2)}\n`)
  }

  async create(
    config: RunConfig,
    options: { name?: string; status?: RunStatus; id?: string } = {},
  ): Promise<RunMeta> {
    const now = new Date()
    const id = options.id ?? newRunId(config, now)
    const meta: RunMeta = {
      version: RUN_FORMAT_VERSION,
      id,
      name: options.name ?? `${config.pipeline} · ${config.preset} · ${config.data.dataset}`,
      createdAt: now.toISOString(),
      updatedAt: now.toISOString(),
      status: options.status ?? 'queued',
      error: null,
      config,
      // Filled in by the engine when it starts.
      environment: {
        engine: config.engine,
        device: null,
        versions: {},
        platform: process.platform,
        backend: null,
        distributed: null,
      },
      stages: config.stages.map((s) => ({
        name: s.name,
        status: 'pending',
        epochs: s.epochs,
        epochsCompleted: 0,
        testTop1: null,
        testTop5: null,
      })),
    }
    // Built in a temporary folder and renamed: a run appears whole or not at all.
    await mkdir(this.root, { recursive: true })
    const temp = join(this.root, `.${process.pid}-${id}.tmp`)
    await mkdir(join(temp, 'snapshots'), { recursive: true })
    await mkdir(join(temp, 'checkpoints'), { recursive: true })
    await writeFile(join(temp, LOG_FILE), '')
    await writeFileAtomic(join(temp, RUN_FILE), `${JSON.stringify(RunMeta.parse(meta), null, 2)}\n`)
    await rename(temp, this.dir(id))
    return meta
  }

  async read(id: string): Promise<RunMeta> {
    const file = join(this.dir(id), RUN_FILE)
    if (!existsSync(file)) throw new RunStoreError(`no run "${id}" (see \`npm run r2b -- runs\`)`)
    const meta = await readJson(file, StoredRunMeta, 'restore it from a backup or remove the run folder')
    // A copied or edited folder must not speak for another run: listings and writes go by the folder.
    if (meta.id !== id)
      throw new RunStoreError(
        `${file} says it is run "${meta.id}", but its folder is "${id}": rename one to match`,
      )
    return meta
  }

  async exists(id: string): Promise<boolean> {
    return existsSync(join(this.dir(id), RUN_FILE))
  }

  /** Runs, newest first. Unreadable run folders are reported, not fatal. */
  async list(): Promise<{ runs: RunMeta[]; problems: string[] }> {
    let names: string[] = []
    try {
      names = await readdir(this.root)
      await this.sweepAbandoned(names)
    } catch {
      // No runs of its own yet; attached ones are still listed.
    }
    const runs: RunMeta[] = []
    const problems: string[] = []
    const ids = [...names.filter((n) => !n.startsWith('.')), ...this.attached.keys()]
    for (const name of ids) {
      try {
        runs.push(await this.read(name))
      } catch (error) {
        problems.push((error as Error).message)
      }
    }
    runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt))
    return { runs, problems }
  }

  /**
   * Removes what killed processes left: runs created or deleted halfway (`.<pid>-<id>.tmp`, `.<pid>-<id>.deleted-*`)
   * by a process that no longer exists. A live process's folders are its work in progress.
   */
  private async sweepAbandoned(names: string[]): Promise<void> {
    for (const name of names) {
      const owner = /^\.(\d+)-.+\.(tmp|deleted-[0-9a-f]+)$/.exec(name)
      if (owner && !isAlive(Number(owner[1])))
        await rm(join(this.root, name), { recursive: true, force: true })
    }
  }

  async update(id: string, change: (meta: RunMeta) => RunMeta): Promise<RunMeta> {
    const next = RunMeta.parse({ ...change(await this.read(id)), updatedAt: new Date().toISOString() })
    await writeFileAtomic(join(this.dir(id), RUN_FILE), `${JSON.stringify(next, null, 2)}\n`)
    return next
  }

  /** Deletes a run, unless a process (this one or another) is training it; an attached run is detached. */
  async remove(id: string): Promise<void> {
    if (this.isAttached(id)) return this.detach(id)
    const dir = this.dir(id)
    if (!(await this.exists(id))) throw new RunStoreError(`no run "${id}"`)
    const holder = await trainingLock(this.root).holder()
    if (holder?.what === id)
      throw new RunStoreError(
        `run ${id} is training (pid ${holder.pid}): stop it first with \`npm run r2b -- stop ${id}\``,
      )
    // Renamed first so a half-deleted run never lists as a run.
    const trash = join(this.root, `.${process.pid}-${id}.deleted-${randomBytes(2).toString('hex')}`)
    await rename(dir, trash)
    await rm(trash, { recursive: true, force: true })
  }

  // --- metrics log ---------------------------------------------------------------------------------------

  /** Appends light records (one JSON line each); heavy ones go through writeSnapshot / writeCheckpoint. */
  async appendLog(
    id: string,
    records: readonly (LightRecord | CheckpointLine | ResumedLine)[],
  ): Promise<void> {
    if (records.length === 0) return
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join('')
    await appendFile(join(this.dir(id), LOG_FILE), text)
  }

  async readLog(id: string): Promise<LogLine[]> {
    const file = join(this.dir(id), LOG_FILE)
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch {
      throw new RunStoreError(
        `${file} is missing: run ${id} has lost its metrics log and cannot be shown or resumed`,
      )
    }
    return parseLines(text, StoredLogLine, file)
  }

  // --- snapshots -----------------------------------------------------------------------------------------

  /** Stores attention maps or gate values as one float32 file plus an index line, in that order. */
  async writeSnapshot(id: string, record: SnapshotRecord): Promise<SnapshotIndexEntry> {
    const { entry, payload } = encodeSnapshot(record)
    const dir = join(this.dir(id), 'snapshots')
    await mkdir(join(dir, record.stage), { recursive: true })
    await writeFileAtomic(
      join(dir, entry.file),
      new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength),
    )
    await appendFile(join(dir, SNAPSHOT_INDEX), `${JSON.stringify(entry)}\n`)
    return entry
  }

  async snapshotIndex(id: string): Promise<SnapshotIndexEntry[]> {
    const file = join(this.dir(id), 'snapshots', SNAPSHOT_INDEX)
    if (!existsSync(file)) return []
    return parseLines(await readFile(file, 'utf8'), StoredSnapshotIndexEntry, file)
  }

  /** The attention or gate record one index entry describes, read from its payload. */
  async readSnapshot(id: string, entry: SnapshotIndexEntry): Promise<SnapshotRecord> {
    // Entries may come from a caller: checked again, so the file named is always inside snapshots/.
    const checked = SnapshotIndexEntry.safeParse(entry)
    if (!checked.success) throw new RunStoreError(`not a snapshot of run ${id}: ${firstIssue(checked.error)}`)
    const file = join(this.dir(id), 'snapshots', checked.data.file)
    let bytes: Buffer
    try {
      bytes = await readFile(file)
    } catch {
      throw new RunStoreError(`${file} is missing: the run's snapshot index names it`)
    }
    if (bytes.byteLength % 4 !== 0)
      throw new RunStoreError(`${file} is ${bytes.byteLength} bytes, not whole float32 values: it is damaged`)
    const payload = new Float32Array(
      bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
    )
    try {
      return decodeSnapshot(checked.data, payload)
    } catch (error) {
      throw new RunStoreError(`${file} is truncated: ${(error as Error).message}`)
    }
  }

  // --- checkpoints ---------------------------------------------------------------------------------------

  /**
   * Writes a checkpoint (folder renamed into place whole) and then its line in the log: the line is what
   * makes the epoch count as done.
   */
  async writeCheckpoint(id: string, record: CheckpointRecord, final = false): Promise<CheckpointLine> {
    const data = new Uint8Array(record.data)
    const target = join(this.dir(id), 'checkpoints', checkpointPath(record.stage, record.epochsCompleted))
    const temp = `${target}.${randomBytes(4).toString('hex')}.tmp`
    await mkdir(temp, { recursive: true })
    const digest = sha256(data)
    await writeFileAtomic(join(temp, 'data.bin'), data)
    await writeFileAtomic(
      join(temp, 'manifest.json'),
      `${JSON.stringify({ ...record.manifest, sha256: digest, bytes: data.byteLength }, null, 2)}\n`,
    )
    await rm(target, { recursive: true, force: true })
    await rename(temp, target)
    const line: CheckpointLine = {
      kind: 'checkpoint',
      stage: record.stage,
      epochsCompleted: record.epochsCompleted,
      step: record.manifest.step,
      sha256: digest,
      bytes: data.byteLength,
      final,
    }
    await this.appendLog(id, [line])
    // The commit point must survive a power cut: flush the log.
    const log = await open(join(this.dir(id), LOG_FILE), 'r+')
    await log.sync()
    await log.close()
    return line
  }

  /** Loads a checkpoint and verifies it against the checksum its log line recorded. */
  async readCheckpoint(id: string, line: CheckpointLine): Promise<Checkpoint> {
    const where = checkpointPath(line.stage, line.epochsCompleted)
    const dir = join(this.dir(id), 'checkpoints', where)
    let bytes: Buffer
    try {
      bytes = await readFile(join(dir, 'data.bin'))
    } catch {
      throw new RunStoreError(`checkpoint ${where} of run ${id} is missing: the run cannot continue from it`)
    }
    const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    if (data.byteLength !== line.bytes || sha256(data) !== line.sha256) {
      throw new RunStoreError(
        `checkpoint ${where} of run ${id} is corrupted (checksum mismatch in ${join(dir, 'data.bin')}): refusing to load it`,
      )
    }
    const {
      sha256: _sum,
      bytes: _size,
      ...manifest
    } = await readJson(
      join(dir, 'manifest.json'),
      ReadCheckpointManifest,
      `checkpoint ${where} of run ${id} cannot be loaded`,
    )
    const problems = payloadProblems(manifest, data.byteLength)
    if (manifest.stage !== line.stage || manifest.epochsCompleted !== line.epochsCompleted)
      problems.unshift(`it says stage ${manifest.stage}, ${manifest.epochsCompleted} epochs completed`)
    if (problems.length)
      throw new RunStoreError(`checkpoint ${where} of run ${id} does not match its log line: ${problems[0]}`)
    return { manifest, data: data.slice().buffer }
  }

  /**
   * Removes checkpoint folders a killed writer left half written (`<stage>/e<N>.<hex>.tmp`). Only the
   * process about to train the run calls this, holding the training lock: no writer is live.
   */
  private async sweepCheckpointTemps(id: string): Promise<void> {
    const base = join(this.dir(id), 'checkpoints')
    const stages = await readdir(base, { withFileTypes: true }).catch(() => [])
    for (const stage of stages.filter((entry) => entry.isDirectory())) {
      for (const name of await readdir(join(base, stage.name))) {
        if (/^e\d+\.[0-9a-f]+\.tmp$/.test(name))
          await rm(join(base, stage.name, name), { recursive: true, force: true })
      }
    }
  }

  /** The checkpoint lines of the log, oldest first. */
  async checkpoints(id: string): Promise<CheckpointLine[]> {
    return (await this.readLog(id)).filter((l) => l.kind === 'checkpoint')
  }

  /**
   * Rolls the run back to its last checkpoint for a resume: log lines and snapshot entries after it are
   * dropped (atomically rewritten, in format 2). Returns that checkpoint line, or null when no epoch was
   * completed.
   */
  async rollBackToLastCheckpoint(id: string): Promise<CheckpointLine | null> {
    await this.sweepCheckpointTemps(id)
    const file = join(this.dir(id), LOG_FILE)
    const lines = await this.readLog(id)
    let last = -1
    lines.forEach((l, i) => {
      if (l.kind === 'checkpoint') last = i
    })
    // A stage-end right after a checkpoint belongs to it, unless the stage was stopped (it will run on).
    const next = lines[last + 1]
    if (last >= 0 && next?.kind === 'stage-end' && !next.stopped) last += 1
    const kept = lines.slice(0, last + 1)
    await writeFileAtomic(file, kept.map((l) => `${JSON.stringify(l)}\n`).join(''))
    const committed = kept.filter((l) => l.kind === 'checkpoint')
    // A snapshot and the checkpoint taken after the same epoch count the same epochs completed.
    const done = new Set(committed.map((l) => `${l.stage}/${l.epochsCompleted}`))
    const index = await this.snapshotIndex(id)
    const keptIndex = index.filter((e) => done.has(`${e.stage}/${e.epochsCompleted}`))
    await writeFileAtomic(
      join(this.dir(id), 'snapshots', SNAPSHOT_INDEX),
      keptIndex.map((e) => `${JSON.stringify(e)}\n`).join(''),
    )
    return committed.at(-1) ?? null
  }
}
