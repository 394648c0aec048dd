/**
 * The paper's ablation (Table 3, CIFAR-100): every pipeline row × downsample × seed trained as an ordinary
 * run, then summarised as the paper lays it out: top-1/top-5 after stage 1 (binary activations, real
 * weights) and after stage 2 (fully binary), mean ± std over seeds, with the paper's own figures beside them
 * when the preset is the paper's. Pure data: the CLI, the HTML report and the UI all build the table here.
 */
import { z } from 'zod'
import type { PipelineName } from './run-config'
import { EngineName, PresetName, type RunConfig, type StudentSpec } from './run-config'
import { RunId, type RunMeta } from './runs'

/** The rows of Table 3, in its order, and the names it gives them. */
/** Its rows are ordinary pipelines. */
export const ABLATION_ROWS = [
  'sb',
  'sb+att',
  'sb+att+kd',
  'sb+gate',
  'sb+progressive',
  'r2b',
] as const satisfies readonly PipelineName[]
export type AblationRow = (typeof ABLATION_ROWS)[number]
export const ROW_NAMES: Record<AblationRow, string> = {
  sb: 'Strong baseline (SB)',
  'sb+att': 'SB + attention',
  'sb+att+kd': 'SB + attention + KD',
  'sb+gate': 'SB + gating only',
  'sb+progressive': 'SB + progressive teacher-student',
  r2b: 'Real-to-Bin',
}

type Cell = { top1: number; top5: number }
type PaperRow = Record<'binary' | 'real', { s1: Cell; s2: Cell }>
const p = (s1: [number, number], s2: [number, number]) => ({
  s1: { top1: s1[0] / 100, top5: s1[1] / 100 },
  s2: { top1: s2[0] / 100, top5: s2[1] / 100 },
})
/** The paper's CIFAR-100 figures (docs: method.md §5), ResNet-18. */
export const PAPER_TABLE_3: Record<AblationRow, PaperRow> = {
  sb: { binary: p([69.3, 88.7], [68.0, 88.3]), real: p([72.1, 89.9], [69.6, 89.2]) },
  'sb+att': { binary: p([72.2, 90.3], [71.1, 90.1]), real: p([74.3, 91.3], [72.6, 91.4]) },
  'sb+att+kd': { binary: p([73.1, 91.2], [71.9, 90.9]), real: p([75.4, 92.2], [73.9, 91.2]) },
  'sb+gate': { binary: p([67.2, 87.0], [66.2, 86.8]), real: p([72.0, 89.8], [70.9, 89.3]) },
  'sb+progressive': { binary: p([73.8, 91.5], [72.3, 89.8]), real: p([75.7, 92.1], [74.6, 91.8]) },
  r2b: { binary: p([75.0, 92.2], [73.5, 91.6]), real: p([76.5, 92.8], [76.2, 92.7]) },
}

export const Downsample = z.enum(['real', 'binary'])
export type Downsample = z.infer<typeof Downsample>

/** An ablation group on disk (`<data dir>/ablations/<group>.json`): what it runs, and the run of each cell. */
export const AblationGroup = z.object({
  version: z.literal(1),
  group: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,79}$/),
  dataset: z.string(),
  preset: PresetName,
  engine: EngineName,
  rows: z.array(z.enum(ABLATION_ROWS)).min(1),
  downsample: z.array(Downsample).min(1),
  seeds: z.array(z.int().nonnegative()).min(1),
  /** The same overrides for every row: nothing is tuned for one row and not the others. */
  set: z.array(z.string()),
  /** Run id per cell, keyed by cellKey. */
  runs: z.record(z.string(), RunId),
  createdAt: z.iso.datetime(),
})
export type AblationGroup = z.infer<typeof AblationGroup>

export const cellKey = (row: AblationRow, downsample: Downsample, seed: number) =>
  `${row}/${downsample}/${seed}`

const binaryActivations = (s: StudentSpec) =>
  s.architecture === 'binary' && (s.activation === 'sign' || s.activation === 'approxsign')

/** The paper's two columns in a run's chain: the last stage with binary activations and real weights, and
 * the last fully binary one. */
export function tableStages(config: RunConfig): { s1: string | null; s2: string | null } {
  const s1 = config.stages.filter((s) => binaryActivations(s.student) && s.student.weights === 'real').at(-1)
  const s2 = config.stages.filter((s) => binaryActivations(s.student) && s.student.weights === 'sign').at(-1)
  return { s1: s1?.name ?? null, s2: s2?.name ?? null }
}

export const Stat = z.object({
  mean: z.number(),
  /** Sample standard deviation over seeds; null with one seed. */
  std: z.number().nullable(),
  n: z.int().positive(),
})
export type Stat = z.infer<typeof Stat>

function stat(values: number[]): Stat | null {
  if (values.length === 0) return null
  const mean = values.reduce((a, b) => a + b, 0) / values.length
  const std =
    values.length > 1
      ? Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1))
      : null
  return { mean, std, n: values.length }
}

export const AblationCell = z.object({ top1: Stat.nullable(), top5: Stat.nullable() })
export type AblationCell = z.infer<typeof AblationCell>

const PaperCell = z.object({ top1: z.number(), top5: z.number() })

/** The table of a group (the one definition: the CLI's JSON, the HTML report and the UI's listing). */
export const AblationTable = z.object({
  group: z.string(),
  preset: z.string(),
  engine: z.string(),
  dataset: z.string(),
  seeds: z.array(z.int().nonnegative()),
  downsample: z.array(Downsample),
  rows: z.array(
    z.object({
      row: z.enum(ABLATION_ROWS),
      name: z.string(),
      /** Per downsample of the group: stage 1 and stage 2, over the seeds that finished; and the paper's,
       * when it applies. */
      cells: z.partialRecord(
        Downsample,
        z.object({
          s1: AblationCell,
          s2: AblationCell,
          finished: z.int().nonnegative(),
          paper: z.object({ s1: PaperCell, s2: PaperCell }).nullable(),
        }),
      ),
    }),
  ),
  /** Runs not finished yet (or failed), by cell. */
  pending: z.array(z.object({ cell: z.string(), runId: RunId.nullable(), status: z.string() })),
})
export type AblationTable = z.infer<typeof AblationTable>
export type AblationTableCell = NonNullable<AblationTable['rows'][number]['cells'][Downsample]>

/** The table of a group from its runs as they are now; cells of unfinished runs are left out and listed. */
export function ablationTable(group: AblationGroup, runs: ReadonlyMap<string, RunMeta>): AblationTable {
  const pending: AblationTable['pending'] = []
  const paper = group.preset === 'cifar100-paper'
  const rows = group.rows.map((row) => {
    const cells: AblationTable['rows'][number]['cells'] = {}
    for (const downsample of group.downsample) {
      const values = {
        s1: { top1: [] as number[], top5: [] as number[] },
        s2: { top1: [] as number[], top5: [] as number[] },
      }
      let finished = 0
      for (const seed of group.seeds) {
        const key = cellKey(row, downsample, seed)
        const runId = group.runs[key] ?? null
        const run = runId ? runs.get(runId) : undefined
        if (!run || run.status !== 'finished') {
          pending.push({ cell: key, runId, status: run?.status ?? 'not started' })
          continue
        }
        finished++
        const stages = tableStages(run.config)
        for (const column of ['s1', 's2'] as const) {
          const progress = run.stages.find((s) => s.name === stages[column])
          if (progress?.testTop1 != null) values[column].top1.push(progress.testTop1)
          if (progress?.testTop5 != null) values[column].top5.push(progress.testTop5)
        }
      }
      const cell = (v: { top1: number[]; top5: number[] }) => ({ top1: stat(v.top1), top5: stat(v.top5) })
      cells[downsample] = {
        s1: cell(values.s1),
        s2: cell(values.s2),
        finished,
        paper: paper ? PAPER_TABLE_3[row][downsample] : null,
      }
    }
    return { row, name: ROW_NAMES[row], cells }
  })
  return {
    group: group.group,
    preset: group.preset,
    engine: group.engine,
    dataset: group.dataset,
    seeds: group.seeds,
    downsample: group.downsample,
    rows,
    pending,
  }
}

/** A group as the UI lists it: its table, which run is which cell, and how far it has come. */
export const AblationSummary = z.object({
  table: AblationTable,
  /** The run of each cell started so far, by cellKey. */
  runs: z.record(z.string(), RunId),
  /** The overrides every row shares. */
  set: z.array(z.string()),
  createdAt: z.iso.datetime(),
  /** Cells (row × downsample × seed) whose run finished, out of all of the group's. */
  cells: z.object({ finished: z.int().nonnegative(), total: z.int().nonnegative() }),
  /** Runs of the group still training (running or paused) or queued. */
  training: z.array(RunId),
})
export type AblationSummary = z.infer<typeof AblationSummary>

export function ablationSummary(group: AblationGroup, runs: ReadonlyMap<string, RunMeta>): AblationSummary {
  const table = ablationTable(group, runs)
  const total = group.rows.length * group.downsample.length * group.seeds.length
  const training = Object.values(group.runs).filter((id) => {
    const status = runs.get(id)?.status
    return status === 'running' || status === 'paused' || status === 'queued'
  })
  return {
    table,
    runs: group.runs,
    set: group.set,
    createdAt: group.createdAt,
    cells: { finished: total - table.pending.length, total },
    training: [...new Set(training)],
  }
}

/** `74.3 ± 1.2` (percent), `74.3` with one seed, `–` without a value. */
export function formatStat(value: Stat | null): string {
  if (!value) return '–'
  const mean = (100 * value.mean).toFixed(1)
  return value.std === null ? mean : `${mean} ± ${(100 * value.std).toFixed(1)}`
}

export function isAblationRow(value: string): value is AblationRow {
  return (ABLATION_ROWS as readonly string[]).includes(value)
}
