/**
 * The kit's one program, bundled with its dependencies into app/r2b-kit.mjs by `npm run gpu-kit` and started
 * by the kit's run.sh with the kit's own Node:
 *   run [--dry] [--out DIR] [--budget S] [--widths a,b] [--batch N] [--only part,part]   every part, in turn
 *   part NAME --result FILE [--dry] [--widths a,b] [--batch N]                         one part (run starts it)
 * With R2B_KIT_ROLE=worker it is the workbench's training worker instead (src/main/worker), which the quick
 * run of the tfjs engine forks: one bundle serves both.
 */
import { resolve } from 'node:path'
import { DRY, REAL, withOverrides } from './sizes'

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(name)
  return at >= 0 ? args[at + 1] : undefined
}

function numbers(text: string | undefined, name: string): number[] | undefined {
  if (text === undefined) return undefined
  const values = text.split(',').map(Number)
  if (values.some((v) => !Number.isFinite(v) || v <= 0)) throw new Error(`${name}: expected a,b,… > 0`)
  return values
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv
  const dry = args.includes('--dry')
  const widths = numbers(option(args, '--widths'), '--widths')
  const batchText = option(args, '--batch')
  const batch = batchText === undefined ? undefined : numbers(batchText, '--batch')?.[0]
  if (command === 'part') {
    const name = args[0]
    const result = option(args, '--result')
    if (!name || !result) throw new Error('usage: part NAME --result FILE [--dry]')
    const { partMain } = await import('./orchestrate')
    return partMain(name, resolve(result), withOverrides(dry ? DRY : REAL, widths, batch), dry)
  }
  if (command === 'run') {
    const { runKit } = await import('./orchestrate')
    const out = resolve(option(args, '--out') ?? 'results')
    const budget = Number(option(args, '--budget') ?? 540)
    if (!Number.isFinite(budget) || budget <= 0) throw new Error('--budget: expected seconds > 0')
    const only = option(args, '--only')?.split(',')
    const results = await runKit({ dry, out, budgetS: budget, widths, batch, only })
    const failed = Object.entries(results.parts).filter(([, part]) => !part.ok)
    process.stdout.write(
      `\n${results.mode} run done in ${results.seconds} s: ${out}/results.json, ${out}/summary.md` +
        `${failed.length ? `; parts with errors: ${failed.map(([name]) => name).join(', ')}` : '; no part failed'}` +
        `${results.missing.length ? `; ${results.missing.length} figures missing` : ''}\n`,
    )
    // The run itself succeeded: each part's error is in the results, never the exit code.
    return 0
  }
  process.stderr.write('usage: r2b-kit.mjs run [--dry] [--out DIR] [--budget S] | part NAME --result FILE\n')
  return 2
}

if (process.env.R2B_KIT_ROLE === 'worker') {
  await import('../../src/main/worker/index')
} else {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error: unknown) => {
      process.stderr.write(`r2b-kit: ${error instanceof Error ? error.message : String(error)}\n`)
      process.exit(2)
    },
  )
}
