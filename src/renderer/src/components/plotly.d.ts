// The parts of plotly.js the Plot component uses (the package ships no types).
declare module 'plotly.js-dist-min' {
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
  export interface PlotlyHTMLElement extends HTMLDivElement {
    data: Trace[]
    layout: Layout
  }
  const Plotly: {
    react(root: HTMLElement, data: Trace[], layout?: Layout, config?: Config): Promise<PlotlyHTMLElement>
    purge(root: HTMLElement): void
    Plots: { resize(root: HTMLElement): Promise<void> | void }
  }
  export default Plotly
}
