import { afterEach, describe, expect, it } from 'vitest'
import type { WorkbenchEvent } from '../../../../src/shared/api'
import { WorkbenchHost } from '../../../../src/main/host/workbench-host'
import { launchWorkerProcess } from '../../../../src/main/training/worker-client'

let host: WorkbenchHost | null = null
afterEach(async () => {
  await host?.stop()
  host = null
})

function makeHost() {
  return new WorkbenchHost({
    appVersion: '1.2.3',
    versions: { node: process.versions.node },
    startWorker: () => launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'cpu' }, quiet: true }),
  })
}

describe('the workbench host', () => {
  it('answers about, and announces the worker backend as an event', async () => {
    host = makeHost()
    const events: WorkbenchEvent[] = []
    host.api.onEvent((e) => events.push(e))
    const announced = new Promise<void>((resolve) => host!.api.onEvent(() => resolve()))
    host.start()
    await announced
    expect(events[0]).toMatchObject({ type: 'backend', backend: { backend: 'cpu' }, error: null })
    const about = await host.handleCall({ method: 'about', args: [] })
    expect(about).toMatchObject({
      appVersion: '1.2.3',
      backend: { backend: 'cpu', requested: 'cpu' },
      backendError: null,
    })
  })

  it('refuses malformed calls, unknown methods and bad arguments before anything runs', async () => {
    host = makeHost()
    await expect(host.handleCall('about')).rejects.toThrow(/invalid call/)
    await expect(host.handleCall({ method: 'deleteEverything', args: [] })).rejects.toThrow(
      /unknown method "deleteEverything"/,
    )
    await expect(host.handleCall({ method: 'about', args: ['extra'] })).rejects.toThrow(
      /invalid arguments to about/,
    )
  })
})
