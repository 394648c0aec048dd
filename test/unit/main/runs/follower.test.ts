import { appendFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { StepRecord } from '../../../../src/shared/records'
import { makeRunConfig } from '../../../../src/shared/run-config'
import { RunFollower, type Followed } from '../../../../src/main/runs/follower'
import { RunStore } from '../../../../src/main/runs/run-store'

const config = makeRunConfig({ preset: 'quick', pipeline: 'r2b' })
const step = (n: number): StepRecord => ({
  kind: 'step',
  stage: 'teacher',
  epoch: 0,
  step: n,
  loss: { crossEntropy: 1, attention: 0, distillation: 0, total: 1 },
  learningRate: 1e-3,
  imagesPerSecond: 10,
})

describe('following a run folder another process writes', () => {
  it('announces complete lines once, in order, waits for a torn line, and sees run.json change', async () => {
    const store = new RunStore(mkdtempSync(join(tmpdir(), 'r2b-follow-')))
    const run = await store.create(config)
    await store.appendLog(run.id, [step(0)])
    const seen: Followed[] = []
    const follower = await new RunFollower(store, run.id, (change) => seen.push(change)).start({
      intervalMs: 60_000,
      fromEnd: true,
    })
    // What was there before is known to the caller: only run.json is announced at the start.
    expect(seen.map((c) => c.type)).toEqual(['run'])
    await store.appendLog(run.id, [step(1), step(2)])
    const line = JSON.stringify(step(3))
    appendFileSync(join(store.dir(run.id), 'events.jsonl'), line.slice(0, 20))
    await follower.poll()
    appendFileSync(join(store.dir(run.id), 'events.jsonl'), `${line.slice(20)}\n`)
    await store.writeSnapshot(run.id, {
      kind: 'gates',
      stage: 'teacher',
      epochsCompleted: 1,
      probes: [],
      subset: 0,
      gates: [],
    })
    await store.update(run.id, (m) => ({ ...m, status: 'running' }))
    await follower.stop()
    const steps = seen.flatMap((c) =>
      c.type === 'record' && c.record.kind === 'step' ? [c.record.step] : [],
    )
    expect(steps).toEqual([1, 2, 3])
    expect(seen.filter((c) => c.type === 'snapshot')).toHaveLength(1)
    expect(seen.filter((c) => c.type === 'run').map((c) => c.type === 'run' && c.run.status)).toEqual([
      'queued',
      'running',
    ])
  })

  it('says which line is damaged instead of announcing it', async () => {
    const store = new RunStore(mkdtempSync(join(tmpdir(), 'r2b-follow-')))
    const run = await store.create(config)
    const errors: Error[] = []
    const follower = new RunFollower(
      store,
      run.id,
      () => {},
      (error) => errors.push(error),
    )
    appendFileSync(join(store.dir(run.id), 'events.jsonl'), '{"kind":"step"}\n')
    await follower.poll()
    expect(errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/events\.jsonl: line 1 is not a valid record/),
    ])
  })
})
