/**
 * The headless command line: `npm run r2b -- <command>`. Each command lives in ./commands and registers
 * itself here; commands print human-readable output by default and JSON with --json.
 */
import { cac } from 'cac'
import { oneLine, UserError } from '../../shared/errors'
import { registerAblation } from './commands/ablation'
import { registerAttach } from './commands/attach'
import { registerBench } from './commands/bench'
import { registerCheck } from './commands/check'
import { registerDatasets } from './commands/datasets'
import { registerDemo } from './commands/demo'
import { registerExport } from './commands/export'
import { registerInspect } from './commands/inspect'
import { registerLaunch } from './commands/launch'
import { registerPredict } from './commands/predict'
import { registerReport } from './commands/report'
import { registerServe } from './commands/serve'
import { registerSummary } from './commands/summary'
import { registerTrain } from './commands/train'
import { CliError } from './errors'

// A reader that stops early (`runs | head`) closes the pipe: that ends the output, not in an error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    throw error
  })
}

const cli = cac('r2b')
registerCheck(cli)
registerDatasets(cli)
registerBench(cli)
registerServe(cli)
registerSummary(cli)
registerTrain(cli)
registerAttach(cli)
registerLaunch(cli)
registerAblation(cli)
registerInspect(cli)
registerReport(cli)
registerDemo(cli)
registerExport(cli)
registerPredict(cli)

cli.help()
cli.version(process.env.npm_package_version ?? '0.0.0')

async function main(): Promise<void> {
  cli.parse(process.argv, { run: false })
  if (!cli.matchedCommand) {
    if (cli.args.length > 0)
      throw new CliError(`unknown command "${cli.args[0]}": run \`npm run r2b -- --help\``)
    if (!cli.options.help && !cli.options.version) cli.outputHelp()
    return
  }
  await cli.runMatchedCommand()
}

main().catch((error: unknown) => {
  // One line, never a stack: errors users can act on say what to do; anything else is a bug, and its stack
  // is one environment variable away.
  if (error instanceof UserError || (error instanceof Error && error.name === 'CACError')) {
    process.stderr.write(`error: ${oneLine(error)}\n`)
  } else if (process.env.R2B_DEBUG) {
    process.stderr.write(
      `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    )
  } else {
    process.stderr.write(
      `error: ${oneLine(error)} (unexpected; run again with R2B_DEBUG=1 for details, and please report it)\n`,
    )
  }
  process.exitCode = process.exitCode || 1
})
