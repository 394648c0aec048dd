import type { CAC } from 'cac'
import { formatSummary, summariseModel, summaryBuild, type SummaryOptions } from '../../engine/summary'
import { initBackend } from '../../backend/backend'
import { numberOption } from '../args'
import { CliError } from '../errors'

function choice<T extends string>(flag: string, value: unknown, allowed: readonly T[]): T {
  const text = String(value)
  if (!(allowed as readonly string[]).includes(text)) {
    throw new CliError(`--${flag} ${text}: use one of ${allowed.join(', ')}`)
  }
  return text as T
}

function positive(flag: string, value: unknown, integer = true): number {
  const n = numberOption(value, `--${flag}`, { integer, min: integer ? 1 : 0 }) as number
  if (n <= 0) throw new CliError(`--${flag} ${String(value)}: expected a positive number`)
  return n
}

interface SummaryFlags {
  model: string
  stage: string
  input: string | number
  channels: string | number
  classes: string | number
  stem: string
  downsample: string
  width: string | number
  padding: string
  json?: boolean
}

/** `summary`: the larq-style table of a configuration (layers, parameters by precision, BOPs, FLOPs, memory). */
export function registerSummary(cli: CAC): void {
  cli
    .command('summary', 'Print the larq-style summary of a model configuration')
    .option('--model <model>', 'teacher | r2b | baseline', { default: 'r2b' })
    .option(
      '--stage <stage>',
      'fp | ban | bnn (real weights and tanh/identity, binary activations, fully binary)',
      {
        default: 'bnn',
      },
    )
    .option('--input <size>', 'Input size in pixels', { default: 224 })
    .option('--channels <n>', 'Input channels (1 or 3)', { default: 3 })
    .option('--classes <n>', 'Number of classes', { default: 1000 })
    .option('--stem <stem>', 'auto | imagenet | cifar (auto: CIFAR stem below 64 px)', { default: 'auto' })
    .option('--downsample <kind>', 'real | binary shortcut convolutions', { default: 'real' })
    .option('--width <multiplier>', 'Channel multiplier on 64/128/256/512', { default: 1 })
    .option('--padding <value>', 'one | zero: what binary convolutions pad with', { default: 'one' })
    .option('--json', 'Print { layers, totals } as JSON')
    .action(async (flags: SummaryFlags) => {
      const options: SummaryOptions = {
        model: choice('model', flags.model, ['teacher', 'r2b', 'baseline'] as const),
        stage: choice('stage', flags.stage, ['fp', 'ban', 'bnn'] as const),
        input: positive('input', flags.input),
        channels: choice('channels', String(flags.channels), ['1', '3'] as const) === '1' ? 1 : 3,
        classes: positive('classes', flags.classes),
        stem: choice('stem', flags.stem, ['auto', 'imagenet', 'cifar'] as const),
        downsample: choice('downsample', flags.downsample, ['real', 'binary'] as const),
        width: positive('width', flags.width, false),
        binaryPadding: choice('padding', flags.padding, ['one', 'zero'] as const),
      }
      // Shapes come from one batch-1 pass; wasm is the quickest backend to start and needs no GPU.
      await initBackend('wasm')
      const name = options.model === 'teacher' ? 'teacher' : `${options.model}-${options.stage}`
      const summary = summariseModel(summaryBuild(options), name)
      if (flags.json) {
        const { layers, totals } = summary
        process.stdout.write(`${JSON.stringify({ layers, totals })}\n`)
      } else process.stdout.write(`${formatSummary(summary)}\n`)
    })
}
