/**
 * The PyTorch engine driven by the workbench, as a new user meets it: `train --engine torch` streams live,
 * and everything downstream (show, inspect with the tfjs engine reading the PyTorch checkpoint, report,
 * export with its check against the float graph, stop and resume) works as on a tfjs run. Needs the .venv
 * of scripts/setup-python.sh (npm test makes it).
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { RunMeta } from '../../src/shared/runs'
import { RunStore } from '../../src/main/runs/run-store'
import { createRun } from '../../src/main/training/new-run'
import { Trainer } from '../../src/main/training/trainer'
import { launchWorkerProcess } from '../../src/main/training/worker-client'
import { runCli } from '../support/cli'
import { tinySettings } from '../support/tiny'

let home: string

const r2b = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(home, args, env).done

const tiny = (steps: number) => tinySettings({ stages: 2, epochs: 2, steps }).flatMap((s) => ['--set', s])

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-torch-'))
  expect((await r2b(['datasets', '--json'])).code).toBe(0)
})

describe('the PyTorch engine through the workbench', () => {
  let runId = ''

  it('trains with `train --engine torch`, streaming steps and snapshots live, and records engine and device', async () => {
    const { code, stdout, stderr } = await r2b([
      'train',
      '--engine',
      'torch',
      '--pipeline',
      'sb',
      '--json',
      ...tiny(4),
    ])
    expect(code, stderr).toBe(0)
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    runId = String(lines[0]?.runId)
    expect(lines.filter((l) => l.event === 'step')).toHaveLength(2 * 2 * 4)
    expect(lines.filter((l) => l.event === 'attention').map((l) => [l.stage, l.epochsCompleted])).toEqual([
      ['sb-ban', 1],
      ['sb-ban', 2],
      ['sb-bnn', 1],
      ['sb-bnn', 2],
    ])
    expect(lines.at(-1)).toMatchObject({ runId, status: 'finished' })
    const run = JSON.parse(readFileSync(join(home, 'runs', runId, 'run.json'), 'utf8')) as RunMeta
    expect(run.config.engine).toBe('torch')
    expect(run.environment).toMatchObject({ engine: 'torch', device: { kind: 'cpu' }, backend: null })
    expect(run.environment.versions.torch).toMatch(/^2\./)
  })

  it('shows, inspects (the tfjs engine reading its checkpoint), reports and exports the run', async () => {
    const show = await r2b(['show', runId])
    expect(show.stdout).toMatch(/engine {3}torch on cpu/)
    const inspect = await r2b(['inspect', runId, '--image', '5', '--stage', 'sb-bnn', '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    expect(JSON.parse(inspect.stdout)).toMatchObject({ stage: 'sb-bnn', epochsCompleted: 2, image: 5 })
    const report = await r2b(['report', runId])
    expect(report.code).toBe(0)
    expect(existsSync(join(home, 'runs', runId, 'report', 'index.html'))).toBe(true)
    const exported = await r2b([
      'export',
      runId,
      '--stage',
      'sb-bnn',
      '--out',
      join(home, 'm.r2bx'),
      '--verify',
      '--json',
    ])
    expect(exported.code, exported.stderr).toBe(0)
    const { agreement } = JSON.parse(exported.stdout) as { agreement: { agreement: number; images: number } }
    expect(agreement.images).toBeGreaterThan(0)
    expect(agreement.agreement).toBeGreaterThan(0.99)
  })

  it('stops at the next step on request and resumes to the end, no epoch lost or repeated', async () => {
    const store = new RunStore(home)
    const datasets = await readdir(join(home, 'datasets'))
    const run = await createRun(store, {
      dataset: datasets.find((d) => !d.startsWith('.'))!,
      pipeline: 'sb',
      engine: 'torch',
      set: tinySettings({ stages: 2, epochs: 2, steps: [4, 60] }),
    })
    const trainer = new Trainer(store, () => launchWorkerProcess({ quiet: true }))
    try {
      trainer.on((event) => {
        if (event.type === 'record' && event.record.kind === 'stage-start' && event.record.stage === 'sb-bnn')
          void trainer.stop(run.id).catch(() => {})
      })
      expect((await trainer.train(run.id)).status).toBe('stopped')
      const resumed = await new Trainer(store, () => launchWorkerProcess({ quiet: true })).train(run.id)
      expect(resumed.status).toBe('finished')
      const log = await store.readLog(run.id)
      for (const stage of ['sb-ban', 'sb-bnn'])
        expect(
          log
            .filter((l) => l.kind === 'epoch' && l.stage === stage)
            .map((l) => l.kind === 'epoch' && l.epoch),
        ).toEqual([0, 1])
      expect(log.filter((l) => l.kind === 'resumed')).toHaveLength(1)
    } finally {
      await trainer.shutdown()
    }
  })

  it('without a usable Python, refuses `--engine torch` in one line that says how to enable it, leaving no run', async () => {
    const runs = () => (existsSync(join(home, 'runs')) ? readdir(join(home, 'runs')) : [])
    const before = await runs()
    const { code, stderr } = await r2b(['train', '--engine', 'torch', ...tiny(2)], {
      R2B_PYTHON: '/nonexistent/python',
    })
    expect(code).toBe(1)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toMatch(
      /would train on PyTorch, but the PyTorch engine is not available: no Python at "\/nonexistent\/python".*setup-python\.sh/,
    )
    expect(await runs()).toEqual(before)
  })
})
