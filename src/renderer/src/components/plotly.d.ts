// The parts of plotly.js the Plot component uses (typed here: the bundle's own types are of the full build).
declare module 'plotly.js-cartesian-dist-min' {
  export type Datum = string | number | null
  export interface Trace {
    [key: string]: unknown
  }
  export interface Layout {
    [key: string]: unknown
  }
  export interface Config {
    [key: string]: unknown
  }
  export interface PlotlyPoint {
    curveNumber: number
    pointIndex?: number
    pointNumber?: number | number[]
    x?: unknown
    y?: unknown
    z?: unknown
    customdata?: unknown
    data?: Trace
  }
  export interface PlotlyHTMLElement extends HTMLDivElement {
    data: Trace[]
    layout: Layout
    on(event: 'plotly_click', handler: (event: { points: PlotlyPoint[] }) => void): void
    removeAllListeners?(event: string): void
  }
  export interface PlotlyApi {
    react(root: HTMLElement, data: Trace[], layout?: Layout, config?: Config): Promise<PlotlyHTMLElement>
    purge(root: HTMLElement): void
    relayout(root: HTMLElement, update: Layout): Promise<unknown>
    downloadImage(
      root: HTMLElement,
      options: { format: 'png' | 'svg'; filename: string; width?: number; height?: number },
    ): Promise<string>
    Plots: { resize(root: HTMLElement): Promise<void> | void }
  }
  const Plotly: PlotlyApi
  export default Plotly
}
