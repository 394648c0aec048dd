import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'

const root = join(import.meta.dirname, '../..')
let home: string

interface Result {
  code: number | null
  stdout: string
  stderr: string
}

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'src/main/cli/index.ts', ...args], {
    cwd: root,
    env: { ...process.env, R2B_HOME: home, R2B_BACKEND: 'wasm' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

function finish(child: ChildProcess): Promise<Result> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d) => (stdout += String(d)))
  child.stderr?.on('data', (d) => (stderr += String(d)))
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })))
}

const r2b = (...args: string[]) => finish(start(args))

/** Every stage: `epochs` epochs of `steps` steps, a narrow network and a small evaluation. */
function tiny(epochs: number, steps: number): string[] {
  const set = ['model.width=0.0625', 'data.testLimit=100', 'eval.probes=2', 'eval.gateSubset=50']
  for (let i = 0; i < 4; i++)
    set.push(`stages.${i}.epochs=${epochs}`, `stages.${i}.stepsPerEpoch=${steps}`, `stages.${i}.batchSize=16`)
  return set.flatMap((s) => ['--set', s])
}

async function runsJson(): Promise<
  { runId: string; status: string; stages: { name: string; epochs: number }[] }[]
> {
  const { stdout, code } = await r2b('runs', '--json')
  expect(code).toBe(0)
  return JSON.parse(stdout)
}

/** Waits, by watching the run's log, until `predicate` holds for one of its lines. */
async function waitForLog(
  runId: string,
  predicate: (line: Record<string, unknown>) => boolean,
): Promise<void> {
  const file = join(home, 'runs', runId, 'events.jsonl')
  for (;;) {
    const text = existsSync(file) ? readFileSync(file, 'utf8') : ''
    const lines = text.split('\n').filter((l) => l.endsWith('}'))
    if (lines.some((l) => predicate(JSON.parse(l) as Record<string, unknown>))) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-cli-'))
  // Registers the bundled Fashion-MNIST in this data dir.
  const { code, stdout } = await r2b('datasets', '--json')
  expect(code).toBe(0)
  expect(JSON.parse(stdout).map((d: { id: string }) => d.id)).toContain('fashion-mnist')
})

describe('the command line', () => {
  it('demo trains the whole R2B chain on the bundled data and leaves a run that runs, show, inspect and report work on', async () => {
    const demo = await r2b('demo', ...tiny(1, 4))
    expect(demo.code).toBe(0)
    const runId = /run (\S+): finished/.exec(demo.stdout)?.[1]
    expect(runId).toBeDefined()
    // It says what its budget can show, and which command compares methods.
    expect(demo.stdout).toMatch(
      /budget {6}4 stages × 1 epochs of 4 steps[\s\S]*too small to rank methods[\s\S]*ablation/,
    )
    const report = /report\s+file:\/\/(\S+)/.exec(demo.stdout)?.[1]
    expect(report && existsSync(report)).toBe(true)
    expect((await runsJson()).find((r) => r.runId === runId)).toMatchObject({
      status: 'finished',
      stages: [{ name: 'teacher', epochs: 1 }, { name: 'tanh' }, { name: 'ban' }, { name: 'bnn' }],
    })
    const show = await r2b('show', runId!, '--json')
    expect(JSON.parse(show.stdout)).toMatchObject({
      id: runId,
      status: 'finished',
      environment: { backend: { backend: 'wasm' } },
    })
    const inspect = await r2b('inspect', runId!, '--image', '3', '--stage', 'ban', '--json')
    expect(inspect.code).toBe(0)
    const inspected = JSON.parse(inspect.stdout)
    expect(inspected).toMatchObject({ stage: 'ban', teacher: 'tanh', image: 3 })
    expect(inspected.attentionDistance).toHaveLength(8)
    for (const file of inspected.files) expect(existsSync(file)).toBe(true)
  })

  it('a training process killed with SIGKILL leaves an interrupted run that resume finishes, nothing lost or repeated', async () => {
    const child = start(['train', '--json', ...tiny(2, 4)])
    const output = finish(child)
    let runId = ''
    await new Promise<void>((resolve) => {
      child.stdout?.on('data', (d) => {
        const found = /"event":"run","runId":"([^"]+)"/.exec(String(d))
        if (found && !runId) {
          runId = found[1]!
          resolve()
        }
      })
    })
    // Killed halfway through the second stage, right after its first epoch's checkpoint.
    await waitForLog(runId, (l) => l.kind === 'checkpoint' && l.stage === 'tanh')
    child.kill('SIGKILL')
    await output
    expect((await runsJson()).find((r) => r.runId === runId)?.status).toBe('interrupted')

    const resumed = await r2b('resume', runId, '--json')
    expect(resumed.code).toBe(0)
    expect(JSON.parse(resumed.stdout.trim().split('\n').at(-1)!)).toMatchObject({ runId, status: 'finished' })
    const lines = readFileSync(join(home, 'runs', runId, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    for (const stage of ['teacher', 'tanh', 'ban', 'bnn']) {
      expect(lines.filter((l) => l.kind === 'epoch' && l.stage === stage).map((l) => l.epoch)).toEqual([0, 1])
      expect(lines.filter((l) => l.kind === 'step' && l.stage === stage).map((l) => l.step)).toEqual([
        0, 1, 2, 3, 4, 5, 6, 7,
      ])
    }
  })

  it('refuses a second training process while one trains, without writing anything', async () => {
    const first = start(['train', ...tiny(1, 30)])
    const output = finish(first)
    const runs = join(home, 'runs')
    // Wait until the first holds the training lock.
    let firstRun = ''
    for (;;) {
      if (existsSync(join(runs, '.training.lock'))) {
        firstRun = JSON.parse(readFileSync(join(runs, '.training.lock'), 'utf8')).what
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const entries = await readdir(runs)
    const second = await r2b('train', ...tiny(1, 1))
    expect(second.code).toBe(1)
    expect(second.stderr.trim()).toMatch(
      new RegExp(`^error: another workbench process \\(pid \\d+\\) is training run ${firstRun}`),
    )
    expect(await readdir(runs)).toEqual(entries)
    const stop = await r2b('stop', firstRun)
    expect(stop.code).toBe(0)
    expect((await output).code).toBe(1) // stopped, not finished
    expect((await runsJson()).find((r) => r.runId === firstRun)?.status).toBe('stopped')
  })

  it.each([
    [
      ['train', '--dataset', 'no-such-data'],
      /^error: no dataset with id "no-such-data"; see `npm run r2b -- datasets`/,
    ],
    [
      ['train', '--preset', 'huge'],
      /^error: unknown preset "huge": use one of quick, ablation-small, cifar100-paper, imagenet-paper/,
    ],
    [['train', '--pipeline', 'xnor'], /^error: unknown pipeline "xnor": use one of r2b, baseline/],
    [['train', '--set', 'model.depth=50'], /^error: --set model\.depth: unknown key/],
    [
      ['train', '--set', 'model.downsample=maybe'],
      /^error: --set: model\.downsample: allowed values: real, binary/,
    ],
    [['show', 'nope'], /^error: no run "nope"/],
    [['resume', 'nope'], /^error: no run "nope"/],
  ])('%j fails with one line and changes nothing', async (args, message) => {
    const runs = join(home, 'runs')
    const before = existsSync(runs) ? await readdir(runs) : []
    const { code, stderr } = await r2b(...args)
    expect(code).toBe(1)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr.trim()).toMatch(message)
    expect(existsSync(runs) ? await readdir(runs) : []).toEqual(before)
  })

  it('refuses to resume a finished run', async () => {
    const finished = (await runsJson()).find((r) => r.status === 'finished')!
    const { code, stderr } = await r2b('resume', finished.runId)
    expect(code).toBe(1)
    expect(stderr.trim()).toBe(`error: run ${finished.runId} has finished: there is nothing to resume`)
  })
})
