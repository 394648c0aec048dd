/**
 * Following a run that another process writes into a folder elsewhere (a cluster job's folder on shared
 * storage): `attach` shows it in this workbench's store and follows it live until it ends, read-only.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { RunStore } from '../../src/main/runs/run-store'
import { runCli } from '../support/cli'
import { tinySettings } from '../support/tiny'

let elsewhere: string
let here: string

const cli = runCli

beforeAll(async () => {
  elsewhere = await mkdtemp(join(tmpdir(), 'r2b-elsewhere-'))
  here = await mkdtemp(join(tmpdir(), 'r2b-here-'))
})

describe('attach: a run folder written elsewhere', () => {
  it('follows a run while another process trains it, to its end, and keeps showing it read-only', async () => {
    const set = tinySettings({ stages: 2, epochs: 2, steps: 30 }).flatMap((s) => ['--set', s])
    const trainer = cli(elsewhere, ['train', '--pipeline', 'sb', '--json', ...set])
    // The run id, as soon as the other process has created the run.
    let runId = ''
    for (let i = 0; i < 600 && !runId; i++) {
      runId = /"event":"run","runId":"([^"]+)"/.exec(trainer.stdout())?.[1] ?? ''
      if (!runId) await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const folder = join(elsewhere, 'runs', runId)
    const follower = cli(here, ['attach', folder, '--json'])
    const [trained, followed] = await Promise.all([trainer.done, follower.done])
    expect(trained.code, trained.stderr).toBe(0)
    expect(followed.code, followed.stderr).toBe(0)
    expect(followed.stderr).toContain(`attached run ${runId}`)
    const lines = followed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    // Every step of the log, in order, whether it was there when attach began or appended after.
    const steps = lines.filter((l) => l.event === 'step').map((l) => `${l.stage}:${l.step}`)
    const logged = readFileSync(join(folder, 'events.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; stage: string; step: number })
      .filter((l) => l.kind === 'step')
      .map((l) => `${l.stage}:${l.step}`)
    expect(steps).toEqual(logged)
    expect(steps).toHaveLength(2 * 2 * 30)
    expect(lines.at(-1)).toMatchObject({ runId, status: 'finished' })

    // From then on it is one of this store's runs, read from where it lives, and never trained from here.
    const runs = cli(here, ['runs', '--json'])
    expect(JSON.parse((await runs.done).stdout)).toMatchObject([{ runId, status: 'finished' }])
    const report = await cli(here, ['report', runId]).done
    expect(report.code, report.stderr).toBe(0)
    expect(existsSync(join(folder, 'report', 'index.html'))).toBe(true)
    const resume = await cli(here, ['resume', runId]).done
    expect(resume.stderr.trim()).toMatch(/is attached from .*: it trains where it was started/)
    // Forgetting it leaves the folder where it is.
    await new RunStore(here).remove(runId)
    expect((await new RunStore(here).list()).runs).toEqual([])
    expect(existsSync(join(folder, 'run.json'))).toBe(true)
  })

  it('refuses a folder that is not a run folder, in one line', async () => {
    const { code, stderr } = await cli(here, ['attach', elsewhere]).done
    expect(code).toBe(1)
    expect(stderr.trim()).toMatch(/^error: .*run\.json is missing: .* is not a run folder a workbench wrote$/)
  })
})
