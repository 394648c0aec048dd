/**
 * Requests to the process that trains a run, as files in the run folder (docs/run-format.md): any process
 * (`r2b stop RUN`, another UI, a job scheduler) can ask, and an engine in another language reads them the
 * same way.
 */
import { existsSync } from 'node:fs'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { RunStore } from '../runs/run-store'

/** Present: stop at the next step boundary (the last checkpoint stays the resume point). */
export const STOP_REQUEST = 'stop-request'
/** Present: hold between steps until it is removed. */
export const PAUSE_REQUEST = 'pause-request'

/** Asks the process training `runId` (maybe another one) to stop it at the next step. */
export async function requestStop(store: RunStore, runId: string): Promise<void> {
  await writeFile(join(store.dir(runId), STOP_REQUEST), new Date().toISOString())
}

/** Forgets old requests before a run (re)starts: a stop asked of its last session is not asked of this one. */
export async function clearRequests(store: RunStore, runId: string): Promise<void> {
  for (const name of [STOP_REQUEST, PAUSE_REQUEST]) await rm(join(store.dir(runId), name), { force: true })
}

/** Calls `onStop` once when a stop request appears (polled: it may come from any process). */
export function watchStopRequest(dir: string, onStop: () => void, intervalMs = 500): () => void {
  const timer = setInterval(() => {
    if (!existsSync(join(dir, STOP_REQUEST))) return
    clearInterval(timer)
    onStop()
  }, intervalMs)
  return () => clearInterval(timer)
}
