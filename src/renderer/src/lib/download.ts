import type { Trace } from 'plotly.js-cartesian-dist-min'

/** A file name part: letters, digits, `.`, `_` and `-` only. */
export const fileSafe = (text: string) =>
  text
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 120) || 'figure'

/** A figure's file name: run, view and stage (or what else tells it apart), joined. */
export function figureName(...parts: (string | number | null | undefined)[]): string {
  return parts
    .filter((p) => p !== null && p !== undefined && p !== '')
    .map((p) => fileSafe(String(p)))
    .join('_')
}

export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob)
  const link = document.createElement('a')
  link.href = url
  link.download = fileName
  document.body.appendChild(link)
  link.click()
  link.remove()
  setTimeout(() => URL.revokeObjectURL(url), 1000)
}

const cell = (v: unknown) => {
  if (v === null || v === undefined) return ''
  const text = typeof v === 'object' ? JSON.stringify(v) : String(v)
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])

/**
 * A figure's data as CSV, one row per point: `series,x,y` for curves and bars (with the stage and its own
 * step or epoch when the trace carries them), `series,x,y,z` for heatmaps (one row per cell).
 */
export function tracesToCsv(traces: readonly Trace[]): string {
  const rows: string[] = []
  const heatmaps = traces.some((t) => t.type === 'heatmap')
  rows.push(heatmaps ? 'series,x,y,z' : 'series,x,y,stage,within_stage')
  for (const t of traces) {
    if (t.showlegend === false && t.hoverinfo === 'skip') continue
    const name = String(t.name ?? t.type ?? '')
    if (t.type === 'heatmap') {
      const z = list(t.z) as unknown[][]
      const xs = list(t.x)
      const ys = list(t.y)
      z.forEach((row, r) =>
        list(row).forEach((v, c) => rows.push([name, xs[c] ?? c, ys[r] ?? r, v].map(cell).join(','))),
      )
    } else if (t.type === 'box') {
      for (const v of list(t.y).length ? list(t.y) : list(t.x))
        rows.push([name, t.y ? name : v, t.y ? v : name].map(cell).join(','))
    } else {
      const xs = list(t.x)
      const ys = list(t.y)
      const custom = list(t.customdata)
      xs.forEach((x, i) => {
        // A null point is the gap between two stages' lines, not data.
        if (x === null || x === undefined) return
        const extra = list(custom[i])
        rows.push([name, x, ys[i], extra[0], extra[1]].map(cell).join(','))
      })
    }
  }
  return `${rows.join('\n')}\n`
}

/** A figure's data as JSON: its name and, per trace, what it plots. */
export function tracesToJson(title: string, traces: readonly Trace[]): string {
  const keep = ['name', 'type', 'x', 'y', 'z', 'customdata'] as const
  return JSON.stringify(
    {
      figure: title,
      traces: traces
        .filter((t) => !(t.showlegend === false && t.hoverinfo === 'skip'))
        .map((t) => Object.fromEntries(keep.filter((k) => t[k] !== undefined).map((k) => [k, t[k]]))),
    },
    null,
    1,
  )
}
