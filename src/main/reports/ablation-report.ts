/**
 * An ablation group's table as one self-contained HTML page (`<data dir>/ablations/<group>.html`): the
 * paper's Table 3 layout, the measured cells as mean ± std over seeds, the paper's figures beside them when
 * the preset is the paper's, and the runs not finished yet.
 */
import { formatStat, type AblationCell, type AblationTable } from '../../shared/ablation'

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
const paperCell = (c: { top1: number; top5: number } | null) =>
  c ? `${(100 * c.top1).toFixed(1)} / ${(100 * c.top5).toFixed(1)}` : ''

export function ablationHtml(table: AblationTable): string {
  const paper = table.rows.some((r) => table.downsample.some((d) => r.cells[d]?.paper))
  const head = table.downsample.map((d) => `<th colspan="${paper ? 4 : 2}">${d} downsample</th>`).join('')
  const sub = table.downsample
    .map(
      () =>
        `<th>stage 1</th><th>stage 2</th>${paper ? '<th class="paper">paper s1</th><th class="paper">paper s2</th>' : ''}`,
    )
    .join('')
  const body = table.rows
    .map((row) => {
      const cells = table.downsample
        .map((d) => {
          const c = row.cells[d]
          if (!c) return ''
          const measured = (x: AblationCell) =>
            `<td>${formatStat(x.top1)}<br><small>${formatStat(x.top5)}</small></td>`
          return `${measured(c.s1)}${measured(c.s2)}${paper ? `<td class="paper">${paperCell(c.paper?.s1 ?? null)}</td><td class="paper">${paperCell(c.paper?.s2 ?? null)}</td>` : ''}`
        })
        .join('')
      return `<tr><th>${escape(row.name)}</th>${cells}</tr>`
    })
    .join('\n')
  const pending = table.pending.length
    ? `<p class="note">Not in the table yet: ${table.pending.map((p) => `${escape(p.cell)} (${escape(p.status)})`).join(', ')}.</p>`
    : ''
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ablation ${escape(table.group)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#1d2129}
table{border-collapse:collapse;margin:12px 0}td,th{border-bottom:1px solid #d9dde3;padding:6px 12px;text-align:right}
tbody th{text-align:left}.paper{color:#5f6673}small{color:#5f6673}.note{color:#5f6673;font-size:13px}
</style></head><body>
<h1>Ablation ${escape(table.group)}</h1>
<p>Dataset ${escape(table.dataset)}, preset ${escape(table.preset)}, engine ${escape(table.engine)}; seeds ${table.seeds.join(', ')}.
Test top-1 (top-5 below), %, mean ± sample std over the seeds that finished. Stage 1: binary activations, real weights;
stage 2: fully binary. Every row trained with the same budget and overrides.</p>
<table><thead><tr><th></th>${head}</tr><tr><th>method</th>${sub}</tr></thead><tbody>
${body}
</tbody></table>
${paper ? '<p class="note">Paper: Martinez et al., ICLR 2020, Table 3 (CIFAR-100, ResNet-18), top-1 / top-5.</p>' : ''}
${pending}
</body></html>
`
}
