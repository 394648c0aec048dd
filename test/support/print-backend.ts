// Selects the backend as the worker would, prints the report as JSON, releases the backend and returns:
// the process must then exit on its own (a live Dawn instance would keep it running).
import { initBackend, releaseBackend } from '../../src/main/backend/backend'

try {
  const report = await initBackend()
  process.stdout.write(`${JSON.stringify(report)}\n`)
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: (error as Error).message })}\n`)
}
releaseBackend()
