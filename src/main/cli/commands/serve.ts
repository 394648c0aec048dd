import type { CAC } from 'cac'
import { WorkbenchHost } from '../../host/workbench-host'
import { ensureRendererBuilt } from '../../host/renderer-bundle'
import { startWsServer, type WsServerHandle } from '../../host/ws-server'
import { launchWorkerProcess } from '../../training/worker-client'
import { numberOption } from '../args'
import { CliError } from '../errors'
import { collect } from './train'

export interface Served {
  host: WorkbenchHost
  server: WsServerHandle
  close(): Promise<void>
}

/**
 * The host and its WebSocket server as `serve` runs them: also what the hardening tests start in a child
 * process to attack, so they exercise exactly this wiring.
 */
export async function startServe(options: {
  port: number
  rendererDir: string
  home?: string
  workerEnv?: NodeJS.ProcessEnv
}): Promise<Served> {
  const host = new WorkbenchHost({
    appVersion: process.env.npm_package_version ?? '0.0.0',
    versions: { node: process.versions.node, v8: process.versions.v8 },
    startWorker: () => launchWorkerProcess(options.workerEnv ? { env: options.workerEnv } : {}),
    ...(options.home ? { home: options.home } : {}),
  })
  host.start()
  let server: WsServerHandle
  try {
    server = await startWsServer(host, { port: options.port, rendererDir: options.rendererDir })
  } catch (error) {
    await host.stop()
    throw new CliError(`cannot listen on 127.0.0.1:${options.port}: ${(error as Error).message}`)
  }
  return {
    host,
    server,
    close: async () => {
      await server.close()
      await host.stop()
    },
  }
}

/** `serve`: the workbench UI in a browser, against this machine's host (127.0.0.1 only, token in the URL). */
export function registerServe(cli: CAC): void {
  cli
    .command('serve', 'Serve the workbench UI and API on 127.0.0.1 for a browser')
    .option('--port <port>', 'Port (default: a free one)')
    .option('--attach <dir>', 'Also show and follow this run folder, written elsewhere (repeatable)')
    .action(async (options: { port?: string | number; attach?: unknown }) => {
      const port = numberOption(options.port, '--port', { integer: true, min: 0, max: 65535 }) ?? 0
      const dir = await ensureRendererBuilt((line) => process.stderr.write(`${line}\n`))
      const served = await startServe({ port, rendererDir: dir })
      for (const folder of collect(options.attach)) {
        const run = await served.host.api.attachRun(folder)
        process.stderr.write(`following run ${run.id} (${run.status}) from ${folder}\n`)
      }
      process.stdout.write(
        `R2B Workbench is serving on 127.0.0.1 only. Open:\n  ${served.server.url}\n(Ctrl+C stops it)\n`,
      )
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve)
        process.once('SIGTERM', resolve)
      })
      await served.close()
    })
}
