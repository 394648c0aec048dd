/**
 * `ablation`: the paper's Table 3 as one command. Every row × downsample × seed trains as an ordinary run
 * (resumable: run it again to finish what is missing), then the table prints: stage 1 and stage 2 top-1/top-5,
 * mean ± std over seeds, with the paper's figures beside them for `cifar100-paper`; also as JSON and as an
 * HTML page of the group.
 */
import { join } from 'node:path'
import type { CAC } from 'cac'
import {
  ABLATION_ROWS,
  Downsample,
  formatStat,
  isAblationRow,
  type AblationTable,
} from '../../../shared/ablation'
import { EngineName, PresetName, presetNames } from '../../../shared/run-config'
import { writeFileAtomic } from '../../atomic-write'
import { ablationHtml } from '../../reports/ablation-report'
import { RunStore } from '../../runs/run-store'
import { ablationsDir, runAblation } from '../../training/ablation'
import { choiceOption, numberOption, textOption } from '../args'
import { CliError } from '../errors'
import { collect, trainWithProgress } from './train'

function list<T extends string>(
  value: unknown,
  flag: string,
  accept: (v: string) => v is T,
  all: readonly T[],
): T[] {
  if (value === undefined) return [...all]
  const items = String(value)
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean)
  const bad = items.find((v) => !accept(v))
  if (bad !== undefined || items.length === 0)
    throw new CliError(`${flag} ${String(value)}: use some of ${all.join(',')}`)
  return [...new Set(items)] as T[]
}

const cell = (c: { top1: Parameters<typeof formatStat>[0]; top5: Parameters<typeof formatStat>[0] }) =>
  `${formatStat(c.top1)} / ${formatStat(c.top5)}`

export function formatAblation(table: AblationTable): string {
  const lines = [
    `ablation ${table.group}: ${table.dataset}, preset ${table.preset}, engine ${table.engine}, seeds ${table.seeds.join(',')}`,
    'test top-1 / top-5 (%), mean ± std over seeds; stage 1: binary activations, real weights; stage 2: fully binary',
  ]
  for (const downsample of table.downsample) {
    lines.push('', `${downsample} downsample`)
    lines.push(`  ${'method'.padEnd(34)} ${'stage 1'.padEnd(24)} ${'stage 2'.padEnd(24)} paper s1 / s2`)
    for (const row of table.rows) {
      const c = row.cells[downsample]
      if (!c) continue
      const paper = c.paper
        ? `${(100 * c.paper.s1.top1).toFixed(1)} / ${(100 * c.paper.s2.top1).toFixed(1)}`
        : ''
      lines.push(`  ${row.name.padEnd(34)} ${cell(c.s1).padEnd(24)} ${cell(c.s2).padEnd(24)} ${paper}`)
    }
  }
  if (table.pending.length)
    lines.push('', `not finished: ${table.pending.map((p) => `${p.cell} (${p.status})`).join(', ')}`)
  return lines.join('\n')
}

export function registerAblation(cli: CAC): void {
  cli
    .command(
      'ablation',
      "Run the paper's ablation (Table 3) as ordinary runs under one group, then print the table",
    )
    .option('--dataset <id>', 'Dataset id (see `datasets`)', { default: 'fashion-mnist' })
    .option('--preset <name>', `${presetNames.join(' | ')} (default ablation-small)`, {
      default: 'ablation-small',
    })
    .option('--rows <list>', `Rows, comma-separated (default: all: ${ABLATION_ROWS.join(',')})`)
    .option('--downsample <list>', 'real,binary (default: both)')
    .option('--seeds <n>', 'Seeds per cell: 1..n (default 3)', { default: 3 })
    .option('--first-seed <k>', 'Start the seeds at k: k..k+n-1 (default 1; another process may run others)')
    .option('--engine <engine>', 'tfjs | torch (default tfjs)')
    .option('--set <key=value>', 'Override a config field for every row alike (repeatable)')
    .option('--group <name>', 'Name of the group (default: from dataset, preset and engine)')
    .option('--json', 'Print the table as JSON')
    .action(async (options: Record<string, unknown>) => {
      const store = new RunStore()
      const preset = choiceOption(options.preset, 'preset', PresetName) ?? 'ablation-small'
      const { group, table, stoppedAt } = await runAblation(
        store,
        {
          dataset: textOption('--dataset', cli.rawArgs) ?? String(options.dataset),
          preset,
          engine: choiceOption(options.engine, 'engine', EngineName) ?? 'tfjs',
          rows: list(options.rows, '--rows', isAblationRow, ABLATION_ROWS),
          downsample: list(
            options.downsample,
            '--downsample',
            (v): v is Downsample => Downsample.safeParse(v).success,
            Downsample.options,
          ),
          seeds: numberOption(options.seeds, '--seeds', { integer: true, min: 1, max: 20 }) ?? 3,
          firstSeed:
            numberOption(options.firstSeed, '--first-seed', { integer: true, min: 1, max: 1000 }) ?? 1,
          set: collect(options.set),
          ...(options.group === undefined
            ? {}
            : { group: textOption('--group', cli.rawArgs) ?? String(options.group) }),
        },
        (runId, fresh, key) => {
          process.stderr.write(`ablation: ${key} (run ${runId})\n`)
          return trainWithProgress(store, runId, false, { fresh })
        },
      )
      const page = join(ablationsDir(store.home), `${group.group}.html`)
      await writeFileAtomic(page, ablationHtml(table))
      if (options.json) process.stdout.write(`${JSON.stringify({ ...table, report: page })}\n`)
      else process.stdout.write(`${formatAblation(table)}\n\nreport  file://${page}\n`)
      if (stoppedAt)
        process.stderr.write(
          `ablation stopped at ${stoppedAt}: run the same command again to go on from there\n`,
        )
      if (table.pending.length) process.exitCode ||= 1
    })
}
