import type { Layout, PlotlyApi, PlotlyPoint, Trace } from 'plotly.js-cartesian-dist-min'
import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react'
import { figureName, saveBlob, tracesToCsv, tracesToJson } from '../lib/download'
import { themeColours, useDarkTheme } from '../lib/theme'

let plotly: Promise<PlotlyApi> | null = null
/**
 * plotly.js, loaded the first time a plot needs it: its evaluation is the longest piece of work the UI does,
 * and a page without plots (Datasets, New run) should not wait for it.
 */
export function loadPlotly(): Promise<PlotlyApi> {
  plotly ??= import('plotly.js-cartesian-dist-min').then((module) => {
    // For measurements: when plotly's one long evaluation is over.
    performance.mark?.('plotly-evaluated')
    return ((module as { default?: PlotlyApi }).default ?? module) as PlotlyApi
  })
  return plotly
}

/**
 * Plots are drawn one per task, in the order asked: a page of ten plots then blocks the main thread for one
 * plot's draw at a time, not for all of them, and input and live events get through in between.
 */
const drawQueue: (() => Promise<void>)[] = []
let draining = false
function enqueueDraw(draw: () => Promise<void>): void {
  drawQueue.push(draw)
  if (draining) return
  draining = true
  const next = () => {
    const work = drawQueue.shift()
    if (!work) {
      draining = false
      return
    }
    void work()
      .catch((error: unknown) => console.error(error))
      .finally(() => setTimeout(next, 0))
  }
  setTimeout(next, 0)
}

/** The shortest time between two draws of one plot (a streaming run updates its data many times a second). */
const REDRAW_MS = 1000

export interface PlotProps {
  data: Trace[]
  layout?: Layout
  height?: number
  /** Accessible name of the figure. */
  label: string
  testId?: string
  /** File name (without extension) of the image Plotly's toolbar saves. */
  fileName?: string
  /** A click on a point (a heatmap cell, a bar, a marker). */
  onClick?: (point: PlotlyPoint) => void
}

function themeLayout(dark: boolean): Layout {
  const c = themeColours(dark)
  return {
    paper_bgcolor: 'rgba(0,0,0,0)',
    plot_bgcolor: 'rgba(0,0,0,0)',
    font: { color: c.text, size: 12 },
    colorway: ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#ff9da6', '#9d755d'],
    xaxis: { gridcolor: c.grid, zerolinecolor: c.grid },
    yaxis: { gridcolor: c.grid, zerolinecolor: c.grid },
    hoverlabel: { namelength: -1 },
    // Plotly derives the toolbar's colours from the paper colour, which is transparent here (white icons on
    // a white page): they are set for the theme instead.
    modebar: { bgcolor: c.panel, color: c.muted, activecolor: c.accent, orientation: 'h' },
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

/** The toolbar: zoom, pan, autoscale and reset, and a PNG named after the figure. Nothing leaves the machine. */
function plotConfig(fileName: string) {
  return {
    displaylogo: false,
    responsive: false,
    displayModeBar: true,
    showSendToCloud: false,
    showEditInChartStudio: false,
    showLink: false,
    modeBarButtonsToRemove: [
      'sendChartToCloud',
      'sendDataToCloud',
      'editInChartStudio',
      'downloadJson',
      'select2d',
      'lasso2d',
      'toggleSpikelines',
      'hoverClosestCartesian',
      'hoverCompareCartesian',
    ],
    toImageButtonOptions: { format: 'png', filename: fileName, scale: 2 },
  }
}

/**
 * One small wrapper over Plotly.react (react-plotly.js leaks WebGL contexts): updates in place, keeps zoom
 * and hidden traces across updates through a constant uirevision, resizes with its box, purges on unmount.
 * Only SVG/canvas traces are used: WebGL traces compile code at run time, which the CSP forbids. The plot's
 * toolbar sits in its top margin, which holds nothing else.
 */
export function Plot({ data, layout = {}, height = 280, label, testId, fileName, onClick }: PlotProps) {
  const root = useRef<HTMLDivElement>(null)
  const dark = useDarkTheme()
  const click = useRef(onClick)
  click.current = onClick
  const [ready, setReady] = useState(false)
  // The newest figure to draw, drawn when the plot is on screen (or near it) and its turn in the queue comes.
  const pending = useRef<(() => Promise<void>) | null>(null)
  const queued = useRef(false)
  const visible = useRef(typeof IntersectionObserver !== 'function')

  // While a run streams, a plot redraws at most once per REDRAW_MS: the newest data then, never a backlog.
  const lastDraw = useRef(0)
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null)
  const request = () => {
    if (queued.current || timer.current || !pending.current || !visible.current) return
    const wait = lastDraw.current + REDRAW_MS - performance.now()
    if (wait > 0) {
      timer.current = setTimeout(() => {
        timer.current = null
        request()
      }, wait)
      return
    }
    queued.current = true
    enqueueDraw(async () => {
      queued.current = false
      const draw = pending.current
      pending.current = null
      lastDraw.current = performance.now()
      if (draw) await draw()
    })
  }

  useEffect(() => {
    const element = root.current
    if (!element) return
    let live = true
    const merged = mergeLayout(themeLayout(dark), {
      margin: { l: 56, r: 16, t: 32, b: 44 },
      height,
      autosize: true,
      uirevision: 'keep',
      ...layout,
    })
    pending.current = async () => {
      const Plotly = await loadPlotly()
      if (!live) return
      const t0 = performance.now()
      const gd = await Plotly.react(element, data, merged, plotConfig(fileName ?? figureName(label)))
      // For measurements (the e2e test reports the longest): one plot's draw.
      performance.measure?.(`plot-draw ${label}`, { start: t0 })
      // The toolbar's buttons are reached with the mouse; the keyboard has the figure's own buttons.
      for (const button of element.querySelectorAll('.modebar-btn')) button.setAttribute('tabindex', '-1')
      if (!element.dataset.clicks) {
        element.dataset.clicks = 'on'
        gd.on('plotly_click', (event) => {
          const point = event.points[0]
          if (point) click.current?.(point)
        })
      }
      if (live) setReady(true)
    }
    request()
    return () => {
      live = false
    }
    // `request` reads refs only: the draw it queues is always the newest.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [data, layout, height, dark, fileName, label])

  useEffect(() => {
    const element = root.current
    if (!element) return
    const seen =
      typeof IntersectionObserver === 'function'
        ? new IntersectionObserver(
            (entries) => {
              visible.current = entries.some((e) => e.isIntersecting)
              request()
            },
            { rootMargin: '600px' },
          )
        : null
    seen?.observe(element)
    const resized =
      typeof ResizeObserver === 'function'
        ? new ResizeObserver(() => {
            if (element.classList.contains('js-plotly-plot'))
              void loadPlotly().then((Plotly) => Plotly.Plots.resize(element))
          })
        : null
    resized?.observe(element)
    return () => {
      seen?.disconnect()
      resized?.disconnect()
      if (timer.current) clearTimeout(timer.current)
      pending.current = null
      if (element.classList.contains('js-plotly-plot'))
        void loadPlotly().then((Plotly) => Plotly.purge(element))
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [])

  return (
    <div
      ref={root}
      className="plot"
      role="img"
      aria-label={label}
      aria-busy={!ready}
      data-testid={testId}
      style={{ minHeight: height }}
    />
  )
}

export interface PlotFigureProps extends PlotProps {
  title: ReactNode
  /** A line under the title: what is drawn, over which images, with which weights. */
  note?: ReactNode
  /** The figure's own controls, in its header. */
  controls?: ReactNode
  /** A log/linear toggle for the y axis. */
  logY?: { value: boolean; onChange: (log: boolean) => void }
  /** Shown instead of the plot (nothing to draw yet). */
  empty?: ReactNode
  className?: string
}

/**
 * A figure as TensorBoard and W&B users expect one: a title, its controls (log axis), and its data downloadable
 * as CSV or JSON, named after run, view and stage, next to Plotly's own toolbar (zoom, pan, PNG).
 */
export function PlotFigure({ title, note, controls, logY, empty, className, ...plot }: PlotFigureProps) {
  const name = plot.fileName ?? figureName(plot.label)
  const log = logY?.value
  const layout = useMemo(
    () =>
      log === undefined
        ? plot.layout
        : mergeLayout(plot.layout ?? {}, { yaxis: { type: log ? 'log' : 'linear' } }),
    [plot.layout, log],
  )
  return (
    <figure className={className}>
      <figcaption>
        <div className="figure-head">
          <span className="figure-title">{title}</span>
          <span className="figure-tools" role="toolbar" aria-label={`${plot.label}: tools`}>
            {controls}
            {logY && (
              <button
                type="button"
                className="chip"
                aria-pressed={logY.value}
                title="Logarithmic y axis"
                onClick={() => logY.onChange(!logY.value)}
              >
                log y
              </button>
            )}
            <button
              type="button"
              className="chip"
              title={`Download the data as ${name}.csv`}
              onClick={() =>
                saveBlob(new Blob([tracesToCsv(plot.data)], { type: 'text/csv' }), `${name}.csv`)
              }
            >
              CSV
            </button>
            <button
              type="button"
              className="chip"
              title={`Download the data as ${name}.json`}
              onClick={() =>
                saveBlob(
                  new Blob([tracesToJson(plot.label, plot.data)], { type: 'application/json' }),
                  `${name}.json`,
                )
              }
            >
              JSON
            </button>
          </span>
        </div>
        {note && <div className="figure-note">{note}</div>}
      </figcaption>
      {empty ?? <Plot {...plot} layout={layout} fileName={name} />}
    </figure>
  )
}
