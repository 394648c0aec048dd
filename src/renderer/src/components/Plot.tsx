import Plotly, { type Layout, type Trace } from 'plotly.js-dist-min'
import { useEffect, useRef, useState } from 'react'

export interface PlotProps {
  data: Trace[]
  layout?: Layout
  height?: number
  /** Accessible name of the figure. */
  label: string
  testId?: string
}

function prefersDark(): boolean {
  return typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches
}

function themeLayout(dark: boolean): Layout {
  const text = dark ? '#e4e6eb' : '#1d2129'
  const grid = dark ? '#333842' : '#e3e6ea'
  return {
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { color: text, size: 12 },
    colorway: ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#ff9da6', '#9d755d'],
    xaxis: { gridcolor: grid, zerolinecolor: grid },
    yaxis: { gridcolor: grid, zerolinecolor: grid },
    hoverlabel: { namelength: -1 },
  }
}

/** Merges the theme under the caller's layout, one level deep (axis objects are merged, not replaced). */
function mergeLayout(base: Layout, over: Layout): Layout {
  const out: Layout = { ...base }
  for (const [key, value] of Object.entries(over)) {
    const prior = out[key]
    out[key] =
      prior && value && typeof prior === 'object' && typeof value === 'object' && !Array.isArray(value)
        ? { ...(prior as object), ...(value as object) }
        : value
  }
  return out
}

/**
 * One small wrapper over Plotly.react (react-plotly.js leaks WebGL contexts): updates in place, keeps zoom
 * and hidden traces across updates through a constant uirevision, resizes with its box, purges on unmount.
 * Only SVG/canvas traces are used: WebGL traces compile code at run time, which the CSP forbids.
 */
export function Plot({ data, layout = {}, height = 280, label, testId }: PlotProps) {
  const root = useRef<HTMLDivElement>(null)
  const [dark, setDark] = useState(prefersDark)

  useEffect(() => {
    if (typeof matchMedia !== 'function') return
    const query = matchMedia('(prefers-color-scheme: dark)')
    const onChange = () => setDark(query.matches)
    query.addEventListener('change', onChange)
    return () => query.removeEventListener('change', onChange)
  }, [])

  useEffect(() => {
    const element = root.current
    if (!element) return
    const merged = mergeLayout(themeLayout(dark), {
      margin: { l: 56, r: 16, t: 28, b: 44 },
      height,
      autosize: true,
      uirevision: 'keep',
      ...layout,
    })
    void Plotly.react(element, data, merged, { displaylogo: false, responsive: false })
  }, [data, layout, height, dark])

  useEffect(() => {
    const element = root.current
    if (!element) return
    const observer =
      typeof ResizeObserver === 'function' ? new ResizeObserver(() => Plotly.Plots.resize(element)) : null
    observer?.observe(element)
    return () => {
      observer?.disconnect()
      Plotly.purge(element)
    }
  }, [])

  return (
    <div
      ref={root}
      className="plot"
      role="img"
      aria-label={label}
      data-testid={testId}
      style={{ minHeight: height }}
    />
  )
}
