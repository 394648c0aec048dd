/**
 * The headless command line: `npm run r2b -- <command>`. Each command lives in ./commands and registers
 * itself here; commands print human-readable output by default and JSON with --json.
 */
import { cac } from 'cac'
import { registerBench } from './commands/bench'
import { registerCheck } from './commands/check'
import { registerDatasets } from './commands/datasets'
import { registerDemo } from './commands/demo'
import { registerExport } from './commands/export'
import { registerInspect } from './commands/inspect'
import { registerPredict } from './commands/predict'
import { registerReport } from './commands/report'
import { registerServe } from './commands/serve'
import { registerSummary } from './commands/summary'
import { registerTrain } from './commands/train'
import { CliError } from './errors'

const cli = cac('r2b')
registerCheck(cli)
registerDatasets(cli)
registerBench(cli)
registerServe(cli)
registerSummary(cli)
registerTrain(cli)
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
  // One line, no stack, for errors the user can act on; a stack for bugs.
  if (error instanceof CliError || (error instanceof Error && error.name === 'CACError')) {
    process.stderr.write(`error: ${error.message}\n`)
  } else {
    process.stderr.write(
      `error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    )
  }
  process.exitCode = 1
})
