import { useEffect } from 'react'
import {
  ABLATION_ROWS,
  ROW_NAMES,
  cellKey,
  formatStat,
  type AblationSummary,
  type AblationTable,
  type AblationTableCell,
  type Downsample,
} from '../../../shared/ablation'
import { useWorkbench } from '../store/context'

export const ABLATION_COMMAND = 'npm run r2b -- ablation --dataset fashion-mnist --rows sb,r2b --seeds 3'

const STAGES = [
  { key: 's1', label: 'Stage 1', title: 'binary activations, real weights' },
  { key: 's2', label: 'Stage 2', title: 'fully binary' },
] as const
const METRICS = [
  { key: 'top1', label: 'Top-1' },
  { key: 'top5', label: 'Top-5' },
] as const

type Row = AblationTable['rows'][number]

/** The run a cell opens: the first seed's finished run, else the first seed's run of any status. */
function cellRun(
  summary: AblationSummary,
  row: Row['row'],
  downsample: Downsample,
): { runId: string; seed: number } | null {
  const unfinished = new Set(summary.table.pending.map((p) => p.cell))
  let fallback: { runId: string; seed: number } | null = null
  for (const seed of summary.table.seeds) {
    const key = cellKey(row, downsample, seed)
    const runId = summary.runs[key]
    if (!runId) continue
    if (!unfinished.has(key)) return { runId, seed }
    fallback ??= { runId, seed }
  }
  return fallback
}

function MeasuredCell({
  cell,
  stage,
  metric,
  target,
  openRun,
}: {
  cell: AblationTableCell
  stage: 's1' | 's2'
  metric: 'top1' | 'top5'
  target: { runId: string; seed: number } | null
  openRun: (id: string) => void
}) {
  const value = cell[stage][metric]
  const paper = cell.paper?.[stage][metric]
  const text = formatStat(value)
  const over = value
    ? `mean ± sample std over ${value.n} seed${value.n === 1 ? '' : 's'}`
    : 'no finished seed'
  return (
    <td className="ablation-cell">
      {target ? (
        <button
          type="button"
          className="link cell-value"
          title={`${over}; opens the run of seed ${target.seed} (${target.runId})`}
          onClick={() => openRun(target.runId)}
        >
          {text}
        </button>
      ) : (
        <span className="cell-value" title={over}>
          {text}
        </span>
      )}
      {value && <span className="muted small seeds"> n={value.n}</span>}
      {paper !== undefined && (
        <span className="paper-figure" title="The paper's figure (Table 3, CIFAR-100, ResNet-18)">
          paper {(100 * paper).toFixed(1)}
        </span>
      )}
    </td>
  )
}

function GroupTable({ summary }: { summary: AblationSummary }) {
  const openRun = useWorkbench((s) => s.openRun)
  const { table } = summary
  const rank = (row: Row['row']) => ABLATION_ROWS.indexOf(row)
  const rows = [...table.rows].sort((a, b) => rank(a.row) - rank(b.row))
  const paper = rows.some((r) => table.downsample.some((d) => r.cells[d]?.paper))
  return (
    <div className="table-scroll">
      <table className="table numeric ablation-table">
        <caption>
          Test accuracy (%) of group {table.group}: mean ± sample std over the seeds that finished (n per
          cell). Stage 1: binary activations, real weights; stage 2: fully binary.
          {paper ? ' The paper’s figures (greyed) are beside each cell.' : ''} Pick a value to open its run.
        </caption>
        <thead>
          <tr>
            <th scope="col" rowSpan={3}>
              Method
            </th>
            {table.downsample.map((d) => (
              <th key={d} scope="colgroup" colSpan={4}>
                {d === 'real' ? 'Real' : 'Binary'} downsample
              </th>
            ))}
          </tr>
          <tr>
            {table.downsample.flatMap((d) =>
              STAGES.map((s) => (
                <th key={`${d}-${s.key}`} scope="colgroup" colSpan={2} title={s.title}>
                  {s.label}
                </th>
              )),
            )}
          </tr>
          <tr>
            {table.downsample.flatMap((d) =>
              STAGES.flatMap((s) =>
                METRICS.map((m) => (
                  <th key={`${d}-${s.key}-${m.key}`} scope="col">
                    {m.label}
                  </th>
                )),
              ),
            )}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={row.row}>
              <th scope="row">{ROW_NAMES[row.row]}</th>
              {table.downsample.flatMap((d) => {
                const cell = row.cells[d]
                const target = cellRun(summary, row.row, d)
                return STAGES.flatMap((s) =>
                  METRICS.map((m) =>
                    cell ? (
                      <MeasuredCell
                        key={`${d}-${s.key}-${m.key}`}
                        cell={cell}
                        stage={s.key}
                        metric={m.key}
                        target={target}
                        openRun={openRun}
                      />
                    ) : (
                      <td key={`${d}-${s.key}-${m.key}`}>–</td>
                    ),
                  ),
                )
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}

function Progress({ summary }: { summary: AblationSummary }) {
  const openRun = useWorkbench((s) => s.openRun)
  const { finished, total } = summary.cells
  const training = new Set(summary.training)
  return (
    <div className="ablation-progress">
      <p className="progress-line">
        <progress value={finished} max={total} aria-label="Cells finished" />
        <span>
          {finished} of {total} cells finished
          {training.size > 0 ? ` · ${training.size} run${training.size === 1 ? '' : 's'} still training` : ''}
        </span>
      </p>
      {summary.table.pending.length > 0 && (
        <details>
          <summary className="small">Not in the table yet ({summary.table.pending.length})</summary>
          <ul className="small pending-cells">
            {summary.table.pending.map((p) => (
              <li key={p.cell}>
                <code>{p.cell}</code>{' '}
                {p.runId ? (
                  <button type="button" className="link" onClick={() => openRun(p.runId!)}>
                    {p.status}
                  </button>
                ) : (
                  <span className="muted">{p.status}</span>
                )}
              </li>
            ))}
          </ul>
        </details>
      )}
    </div>
  )
}

export function AblationView() {
  const groups = useWorkbench((s) => s.ablations)
  const problems = useWorkbench((s) => s.ablationProblems)
  const loaded = useWorkbench((s) => s.ablationsLoaded)
  const error = useWorkbench((s) => s.ablationsError)
  const selected = useWorkbench((s) => s.selectedAblation)
  const select = useWorkbench((s) => s.selectAblation)
  const loadAblations = useWorkbench((s) => s.loadAblations)
  useEffect(() => {
    void loadAblations()
  }, [loadAblations])

  const summary = groups.find((g) => g.table.group === selected) ?? groups[0]
  return (
    <section aria-labelledby="ablation-title" className="ablation-view">
      <h1 id="ablation-title">Ablation</h1>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {problems.length > 0 && (
        <ul className="warning small" aria-label="Unreadable ablation groups">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
      {loaded && !error && groups.length === 0 && (
        <div className="empty">
          <p>No ablation groups yet.</p>
          <p>
            The paper’s ablation (Table 3) trains every method row × downsample × seed as an ordinary run
            under one group. Run one from a terminal:
          </p>
          <p>
            <code>{ABLATION_COMMAND}</code>
          </p>
        </div>
      )}
      {summary && (
        <>
          <div className="toolbar" role="group" aria-label="Ablation group">
            <label className="inline small">
              Group
              <select value={summary.table.group} onChange={(e) => select(e.target.value)}>
                {groups.map((g) => (
                  <option key={g.table.group} value={g.table.group}>
                    {g.table.group}
                  </option>
                ))}
              </select>
            </label>
            <span className="small muted">
              {summary.table.dataset} · preset {summary.table.preset} · engine {summary.table.engine} · seeds{' '}
              {summary.table.seeds.join(', ')}
              {summary.set.length > 0 ? ` · ${summary.set.join(' ')}` : ''}
            </span>
          </div>
          <Progress summary={summary} />
          <GroupTable summary={summary} />
        </>
      )}
    </section>
  )
}
