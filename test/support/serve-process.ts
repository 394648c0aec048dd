/**
 * `serve` in a child process for the hardening tests: the same host and server wiring as the CLI command
 * (startServe), over a data dir and a one-file UI folder given in the environment. Prints one JSON line
 * `{ port, token, pid }` when it listens; exits on SIGTERM after closing cleanly.
 */
import { startServe } from '../../src/main/cli/commands/serve'

const home = process.env.R2B_HOME
const rendererDir = process.env.R2B_TEST_UI
if (!home || !rendererDir) throw new Error('serve-process needs R2B_HOME and R2B_TEST_UI')

const served = await startServe({
  port: 0,
  rendererDir,
  home,
  workerEnv: { ...process.env, R2B_BACKEND: process.env.R2B_BACKEND ?? 'wasm' },
})
process.stdout.write(
  `${JSON.stringify({ port: served.server.port, token: served.server.token, pid: process.pid })}\n`,
)
process.once('SIGTERM', () => {
  void served.close().then(() => process.exit(0))
})
