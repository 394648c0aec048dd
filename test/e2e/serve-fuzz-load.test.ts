/**
 * `serve` under random API traffic and under load, each in a real server process on 127.0.0.1:
 * - fuzzing: random frames (binary, invalid JSON, random JSON, calls of every method with random arguments,
 *   from a fixed seed) must each get an answer or close that one connection; the server lives on;
 * - load: many clients stream a run's events while it trains, some stalled (never reading), some polling
 *   the history; the server lives on, its memory stays flat, the run finishes intact, and every reading
 *   client sees every live record.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { API_METHODS } from '../../src/shared/api-methods'
import { mixSeed, mulberry32, randomInt, type Random } from '../../src/shared/random'
import { importFashionSubset } from '../fixtures/fashion-subset'
import { connect, startServedProcess, type ServedProcess } from '../support/served'
import { tinySettings } from '../support/tiny'

/** Resident memory of a process, from /proc (Linux). */
function rssBytes(pid: number): number {
  const kb = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kb) * 1024
}

const STRINGS = [
  '',
  'x',
  'nope',
  '../../../etc/passwd',
  '/nonexistent/dir/file.tar.gz',
  'C:\\Windows\\System32',
  '\u0000',
  '%E0%A4%A',
  '🙂',
  'run:../x/y',
  'stage:teacher',
  '20261201-000000-r2b-0000',
  'imp-1',
  'a'.repeat(5000),
  '<script>alert(1)</script>',
]

function randomValue(random: Random, depth = 0): unknown {
  const pick = randomInt(random, depth > 2 ? 5 : 8)
  switch (pick) {
    case 0:
      return STRINGS[randomInt(random, STRINGS.length)]
    case 1:
      return [0, -1, 1, 0.5, 2 ** 53, 1e308, -1e308, 255, 65536][randomInt(random, 9)]
    case 2:
      return random() < 0.5
    case 3:
      return null
    case 4:
      return randomInt(random, 300)
    case 5:
      return Array.from({ length: randomInt(random, 4) }, () => randomValue(random, depth + 1))
    default: {
      const keys = [
        'path',
        'name',
        'format',
        'dataset',
        'run',
        'image',
        'stage',
        'epoch',
        'set',
        'preset',
        'x',
      ]
      const object: Record<string, unknown> = {}
      for (let i = randomInt(random, 5); i > 0; i--)
        object[keys[randomInt(random, keys.length)]!] = randomValue(random, depth + 1)
      return object
    }
  }
}

/** One random frame: mostly calls of real methods, some malformed on purpose. */
function randomFrame(random: Random, id: number): string | Buffer {
  const kind = random()
  if (kind < 0.05)
    return Buffer.from(Array.from({ length: 1 + randomInt(random, 64) }, () => randomInt(random, 256)))
  if (kind < 0.1) return '{"id": 1, "method": "about", "args": [' // invalid JSON
  if (kind < 0.15) return JSON.stringify(randomValue(random))
  const method =
    random() < 0.9
      ? API_METHODS[randomInt(random, API_METHODS.length)]!
      : STRINGS[randomInt(random, STRINGS.length)]!
  const args = Array.from({ length: randomInt(random, 4) }, () => randomValue(random))
  return JSON.stringify({ id, method, args })
}

interface Tally {
  results: number
  errors: number
  closed: number
}

/** Sends one frame and waits for its answer, or for the server to close the connection over it. */
function exchange(served: ServedProcess, frame: string | Buffer, id: number, tally: Tally): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${served.port}/api?token=${served.token}`)
    const timer = setTimeout(
      () => reject(new Error(`no answer to frame ${id}: ${String(frame).slice(0, 200)}`)),
      20_000,
    )
    let settled = false
    const done = () => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      ws.terminate()
      resolve()
    }
    ws.on('error', () => {})
    ws.on('open', () => ws.send(frame))
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as { id?: number; error?: string }
      if (message.id !== id || settled) return
      if (message.error !== undefined) tally.errors++
      else tally.results++
      done()
    })
    ws.on('close', () => {
      if (!settled) tally.closed++
      done()
    })
  })
}

describe('serve under random API traffic', () => {
  it('answers or closes on each of 400 random frames, and lives on with flat memory', async () => {
    const served = await startServedProcess(await mkdtemp(join(tmpdir(), 'r2b-ws-fuzz-')))
    try {
      const random = mulberry32(mixSeed(2026, 12, 1))
      const tally: Tally = { results: 0, errors: 0, closed: 0 }
      // A warm-up round first, so the memory baseline includes what any first call loads.
      for (let id = 1; id <= 50; id++) await exchange(served, randomFrame(random, id), id, tally)
      const before = rssBytes(served.child.pid!)
      const frames = 400
      for (let id = 51; id <= 50 + frames; id += 4) {
        await Promise.all(
          [0, 1, 2, 3].map((k) => exchange(served, randomFrame(random, id + k), id + k, tally)),
        )
      }
      const after = rssBytes(served.child.pid!)
      console.log(
        `ws fuzz: ${frames + 50} frames: ${tally.results} results, ${tally.errors} errors, ${tally.closed} closed; ` +
          `server RSS ${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MiB`,
      )
      expect(tally.results + tally.errors + tally.closed).toBe(frames + 50)
      expect(served.alive(), served.stderr()).toBe(true)
      const client = await connect(served)
      await expect(client.call('about')).resolves.toMatchObject({ canPickFiles: false })
      client.close()
      expect(after - before).toBeLessThan(64 * 2 ** 20)
    } finally {
      await served.stop()
    }
  })
})

describe('serve under load while a run trains', () => {
  it('streams to 24 clients (4 of them stalled, 4 polling) with the run intact and memory flat', async () => {
    const home = await mkdtemp(join(tmpdir(), 'r2b-ws-load-'))
    const dataset = await importFashionSubset(home)
    const served = await startServedProcess(home)
    try {
      const clients = await Promise.all(Array.from({ length: 24 }, () => connect(served)))
      const stalled = clients.slice(0, 4)
      const pollers = clients.slice(4, 8)
      const readers = clients.slice(4)
      for (const client of stalled) client.ws.pause()
      const control = readers[readers.length - 1]!
      const set = tinySettings({ stages: 2, epochs: 2, steps: 20 })
      const rssStart = rssBytes(served.child.pid!)
      const run = (await control.call('startRun', {
        dataset: dataset.id,
        pipeline: 'sb',
        set,
      })) as { id: string }
      let polls = 0
      let finished = false
      // The baseline once everything is loaded and warm: when the first stage ends, half-way.
      let rssHalfway = 0
      control.ws.on('message', (data) => {
        if (rssHalfway === 0 && String(data).includes('"kind":"stage-end"'))
          rssHalfway = rssBytes(served.child.pid!)
      })
      const polling = pollers.map(async (client) => {
        while (!finished) {
          await client.call('runHistory', run.id)
          await client.call('listRuns')
          polls += 2
          // Paced like a dashboard refreshing, not a tight loop that starves the run of the CPU.
          await new Promise((resolve) => setTimeout(resolve, 25))
        }
      })
      // The run's end, as the control client hears it.
      for (;;) {
        const end = control.events.find(
          (e) =>
            (e as { type?: string; run?: { id: string; status: string } }).type === 'run' &&
            (e as { run: { id: string; status: string } }).run.id === run.id &&
            ['finished', 'failed', 'interrupted', 'stopped'].includes(
              (e as { run: { status: string } }).run.status,
            ),
        ) as { run: { status: string; error: string | null } } | undefined
        if (end) {
          expect(end.run.error).toBeNull()
          expect(end.run.status).toBe('finished')
          break
        }
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      finished = true
      await Promise.all(polling)
      const rssEnd = rssBytes(served.child.pid!)
      const history = (await control.call('runHistory', run.id)) as { log: { kind: string }[] }
      const steps = history.log.filter((l) => l.kind === 'step').length
      expect(steps).toBe(2 * 2 * 20)
      // Every reading client saw every step record live, in order and once.
      const stepEvents = (client: (typeof clients)[number]) =>
        client.events.filter(
          (e) =>
            (e as { type: string; record?: { kind: string } }).type === 'record' &&
            (e as { record: { kind: string } }).record.kind === 'step',
        ).length
      for (const client of readers) expect(stepEvents(client)).toBe(steps)
      const delivered = readers.reduce((sum, client) => sum + client.events.length, 0)
      console.log(
        `ws load: 24 clients (4 stalled, 4 polling: ${polls} history/list calls), ${delivered} events delivered to ` +
          `the 20 reading clients, ${steps} steps; server RSS ${(rssStart / 2 ** 20).toFixed(0)} MiB at the start, ` +
          `${(rssHalfway / 2 ** 20).toFixed(0)} half-way, ${(rssEnd / 2 ** 20).toFixed(0)} at the end`,
      )
      expect(served.alive(), served.stderr()).toBe(true)
      expect(rssHalfway).toBeGreaterThan(0)
      expect(rssEnd - rssHalfway).toBeLessThan(48 * 2 ** 20)
      for (const client of clients) client.close()
    } finally {
      await served.stop()
    }
  })
})
