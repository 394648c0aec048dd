import type { CAC } from 'cac'
import { WorkbenchHost } from '../../host/workbench-host'
import { ensureRendererBuilt } from '../../host/renderer-bundle'
import { startWsServer } from '../../host/ws-server'
import { launchWorkerProcess } from '../../training/worker-client'
import { CliError } from '../errors'

/** `serve`: the workbench UI in a browser, against this machine's host (127.0.0.1 only, token in the URL). */
export function registerServe(cli: CAC): void {
  cli
    .command('serve', 'Serve the workbench UI and API on 127.0.0.1 for a browser')
    .option('--port <port>', 'Port (default: a free one)')
    .action(async (options: { port?: string | number }) => {
      const port = options.port === undefined ? 0 : Number(options.port)
      if (!Number.isInteger(port) || port < 0 || port > 65535)
        throw new CliError(`--port must be 0-65535, got ${options.port}`)
      const dir = await ensureRendererBuilt((line) => process.stderr.write(`${line}\n`))
      const host = new WorkbenchHost({
        appVersion: process.env.npm_package_version ?? '0.0.0',
        versions: { node: process.versions.node, v8: process.versions.v8 },
        startWorker: () => launchWorkerProcess(),
      })
      host.start()
      let server
      try {
        server = await startWsServer(host, { port, rendererDir: dir })
      } catch (error) {
        await host.stop()
        throw new CliError(`cannot listen on 127.0.0.1:${port}: ${(error as Error).message}`)
      }
      process.stdout.write(
        `R2B Workbench is serving on 127.0.0.1 only. Open:\n  ${server.url}\n(Ctrl+C stops it)\n`,
      )
      await new Promise<void>((resolve) => {
        process.once('SIGINT', resolve)
        process.once('SIGTERM', resolve)
      })
      await server.close()
      await host.stop()
    })
}
