/**
 * The command line as a careless user meets it: bad values, a closed pipe, and Ctrl+C pressed in a
 * terminal, which signals the whole process group (and which `tsx`, behind `npm run r2b`, may relay twice).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { idxFile, idxLabels, writeIdxSet } from '../fixtures/datasets'
import { tinyBudget, tinySettings } from '../support/tiny'

const root = join(import.meta.dirname, '../..')
const tsx = join(root, 'node_modules/.bin/tsx')
let home: string

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function collect(child: ChildProcess): Promise<Result> & { stderrSoFar: () => string } {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d) => (stdout += String(d)))
  child.stderr?.on('data', (d) => (stderr += String(d)))
  const done = new Promise<Result>((resolve) =>
    child.on('close', (code) => resolve({ code, stdout, stderr })),
  )
  return Object.assign(done, { stderrSoFar: () => stderr })
}

/** The CLI as `npm run r2b` starts it (through the tsx binary), in a process group of its own. */
function startCli(args: string[]): ChildProcess {
  return spawn(tsx, ['src/main/cli/index.ts', ...args], {
    cwd: root,
    env: { ...process.env, R2B_HOME: home, R2B_BACKEND: 'wasm' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
}

const r2b = (...args: string[]) => collect(startCli(args))

/** Ctrl+C as a terminal delivers it: SIGINT to the whole group, then once more to the CLI process itself,
 * as tsx's relay does when the CLI is slow to acknowledge the first. */
function pressCtrlC(child: ChildProcess): void {
  process.kill(-child.pid!, 'SIGINT')
  const children = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)
  setTimeout(() => {
    for (const pid of children.filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGINT')
      } catch {
        // Already gone.
      }
    }
  }, 50)
}

async function until(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 1200; i++) {
    if (condition()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-cli-harden-'))
})

describe('bad values are one line, and text stays text', () => {
  it.each([
    [['train', '--seed', 'abc'], /^error: --seed abc: expected a whole number from 0 to 2147483647$/],
    [['train', '--name', ''], /^error: run name: a name cannot be empty$/],
    [['train', '--name', 'two\nlines'], /^error: run name: a name cannot contain control characters/],
    [['train', '--set', 'model.width=1e308'], /^error: --set: model\.width: width is at most 8/],
    [['train', '--set', 'data.dataset=../../elsewhere/x'], /^error: --set: data\.dataset: a dataset id is/],
    [['inspect', 'nope', '--image', '1.5'], /^error: --image 1.5: expected a whole number of at least 0$/],
    [
      ['train', '--teacher-recipe', 'sgd'],
      /^error: unknown teacher recipe "sgd": use one of students, reference$/,
    ],
    [
      ['launch', '--gpus-per-node', '1', '--teacher-recipe', 'keras'],
      /^error: unknown teacher recipe "keras": use one of students, reference$/,
    ],
  ])('%j', async (args, message) => {
    const { code, stderr } = await r2b(...args)
    expect(code).toBe(1)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr.trim()).toMatch(message)
    expect(existsSync(join(home, 'runs')) ? await readdir(join(home, 'runs')) : []).toEqual([])
  })

  it('keeps a name that looks like a number as typed', async () => {
    const source = await mkdtemp(join(tmpdir(), 'r2b-idx-'))
    await writeIdxSet(source, { train: 8, test: 4, rows: 4, cols: 4, classes: 2 })
    const { code, stdout } = await r2b('import', source, '--name', '007', '--json')
    expect(code).toBe(0)
    expect(JSON.parse(stdout)).toMatchObject({ id: '007', name: '007' })
  })

  it('ends quietly when the reader of its output goes away (`runs | head`)', async () => {
    const child = spawn('bash', ['-c', `set -o pipefail; "${tsx}" src/main/cli/index.ts runs | true`], {
      cwd: root,
      env: { ...process.env, R2B_HOME: home },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const { code, stderr } = await collect(child)
    expect(stderr).toBe('')
    expect(code).toBe(0)
  })
})

describe('Ctrl+C in a terminal', () => {
  it('during an import: says it cancelled, removes the partial import and exits 130', async () => {
    const source = await mkdtemp(join(tmpdir(), 'r2b-big-idx-'))
    // 30,000 images of 64×64: long enough to interrupt midway.
    const n = 30_000
    const images = new Uint8Array(n * 64 * 64)
    for (let i = 0; i < images.length; i += 97) images[i] = i & 255
    await writeFile(join(source, 'train-images-idx3-ubyte'), idxFile([n, 64, 64], images))
    await writeFile(join(source, 'train-labels-idx1-ubyte'), idxFile([n], idxLabels(n, 10)))
    await writeFile(join(source, 't10k-images-idx3-ubyte'), idxFile([10, 64, 64], new Uint8Array(10 * 4096)))
    await writeFile(join(source, 't10k-labels-idx1-ubyte'), idxFile([10], idxLabels(10, 10)))
    const before = existsSync(join(home, 'datasets')) ? await readdir(join(home, 'datasets')) : []
    const child = startCli(['import', source, '--name', 'big'])
    const result = r2bResult(child)
    await until('the import to start writing', () => /importing · [1-9]/.test(result.stderrSoFar()))
    pressCtrlC(child)
    const { code, stderr } = await result
    expect(stderr).toContain('error: import cancelled: nothing was stored')
    expect(code).toBe(130)
    expect(await readdir(join(home, 'datasets'))).toEqual(before)
  })

  it('during training: the worker lives on and the run stops at the next step, resumable', async () => {
    const set = tinySettings({ stages: 2, epochs: 1, steps: 200 })
    const child = startCli(['train', '--pipeline', 'sb', '--json', ...set.flatMap((s) => ['--set', s])])
    let runId = ''
    child.stdout?.on('data', (d) => {
      runId ||= /"event":"run","runId":"([^"]+)"/.exec(String(d))?.[1] ?? ''
    })
    const result = r2bResult(child)
    const log = () => join(home, 'runs', runId, 'events.jsonl')
    await until(
      'the first training step',
      () => runId !== '' && existsSync(log()) && readFileSync(log(), 'utf8').includes('"kind":"step"'),
    )
    pressCtrlC(child)
    const { stderr } = await result
    expect(stderr).toContain('stopping at the next step')
    const meta = JSON.parse(readFileSync(join(home, 'runs', runId, 'run.json'), 'utf8')) as { status: string }
    expect(meta.status).toBe('stopped')
  })
})

describe('Ctrl+C during an ablation', () => {
  it('stops the whole ablation, not just the cell it is training, and says how to go on', async () => {
    const set = tinyBudget({ epochs: 1, steps: 200 }).flatMap((s) => ['--set', s])
    const args = ['ablation', '--rows', 'sb,sb+gate', '--downsample', 'real', '--seeds', '1', ...set]
    const child = startCli(args)
    const result = r2bResult(child)
    await until('the first cell to train', () => /\[1\] sb-ban +\d+\/200/.test(result.stderrSoFar()))
    pressCtrlC(child)
    const { code, stderr } = await result
    expect(stderr).toContain('stopping at the next step')
    expect(stderr).toContain('ablation stopped at sb/real/1: run the same command again to go on from there')
    // The next cell never started.
    expect(stderr.match(/ablation: \S+ \(run /g)).toEqual([expect.stringContaining('sb/real/1')])
    expect(code).toBe(1)
    const group = JSON.parse(
      readFileSync(join(home, 'ablations', 'fashion-mnist-ablation-small-tfjs.json'), 'utf8'),
    ) as { runs: Record<string, string> }
    expect(Object.keys(group.runs)).toEqual(['sb/real/1'])
    const meta = JSON.parse(
      readFileSync(join(home, 'runs', group.runs['sb/real/1']!, 'run.json'), 'utf8'),
    ) as { status: string }
    expect(meta.status).toBe('stopped')
  })
})

function r2bResult(child: ChildProcess) {
  return collect(child)
}
