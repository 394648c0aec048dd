import { afterEach, describe, expect, it } from 'vitest'
import type { WorkerEvent } from '../../../../src/shared/worker-protocol'
import { launchWorkerProcess, type WorkerClient } from '../../../../src/main/training/worker-client'

let worker: WorkerClient | null = null
afterEach(async () => {
  await worker?.shutdown()
  worker = null
})

describe('the training worker process', () => {
  it('announces its backend, streams check steps and finishes', async () => {
    worker = launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true })
    const { backend } = await worker.waitFor('ready')
    expect(backend).toMatchObject({ backend: 'wasm', requested: 'wasm' })
    const steps: Extract<WorkerEvent, { type: 'check-step' }>[] = []
    worker.on((event) => {
      if (event.type === 'check-step') steps.push(event)
    })
    worker.send({ type: 'check', steps: 3, batchSize: 8 })
    const done = await worker.waitFor('check-done')
    expect(steps.map((s) => s.step)).toEqual([1, 2, 3])
    expect(steps.every((s) => Number.isFinite(s.loss) && s.stepMs > 0)).toBe(true)
    expect(done.imagesPerSecond).toBeGreaterThan(0)
  })

  it('answers an invalid command with a failed event that says why, and keeps serving', async () => {
    worker = launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'cpu' }, quiet: true })
    await worker.waitFor('ready')
    const failed = new Promise<WorkerEvent>((resolve) => worker!.on((e) => e.type === 'failed' && resolve(e)))
    worker.send({ type: 'check', steps: -1, batchSize: 8 } as never)
    expect(await failed).toMatchObject({
      type: 'failed',
      message: expect.stringMatching(/invalid command.*steps/s),
    })
    worker.send({ type: 'check', steps: 1, batchSize: 4 })
    await expect(worker.waitFor('check-done')).resolves.toMatchObject({ type: 'check-done' })
  })

  it('reports a worker killed with SIGKILL instead of hanging', async () => {
    worker = launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'cpu' }, quiet: true })
    await worker.waitFor('ready')
    const pending = worker.waitFor('check-done')
    worker.kill('SIGKILL')
    await expect(pending).rejects.toThrow(/exited \(SIGKILL\)/)
  })

  it('exits on shutdown: the backend (and Dawn) no longer hold the process', async () => {
    worker = launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'webgpu' }, quiet: true })
    await worker.waitFor('ready')
    const exit = new Promise<number | null>((resolve) => worker!.onExit((code) => resolve(code)))
    worker.send({ type: 'shutdown' })
    expect(await exit).toBe(0)
  })
})
