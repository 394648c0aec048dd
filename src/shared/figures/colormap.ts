/**
 * Colour maps, one set for every figure of the workbench: the UI (Plotly colour scales and canvas maps), the
 * HTML report and `inspect`'s PNGs draw with these, so a colour means the same thing everywhere.
 *
 * - Magnitudes (attention maps): viridis, perceptually uniform and readable in grey and by colour-blind readers.
 * - Signed differences (student − teacher, gate − centre): one diverging map, blue below zero, white at zero,
 *   red above. **Red means more**: the student attends more than its teacher; a gate scales a channel up
 *   relative to its centre.
 */

// Polynomial fit of matplotlib's viridis (degree 6 per channel), accurate to well under one 8-bit step.
const VIRIDIS = [
  [0.2777273272234177, 0.005407344544966578, 0.3340998053353061],
  [0.1050930431085774, 1.404613529898575, 1.384590162594685],
  [-0.3308618287255563, 0.214847559468213, 0.09509516302823659],
  [-4.634230498983486, -5.799100973351585, -19.33244095627987],
  [6.228269936347081, 14.17993336680509, 56.69055260068105],
  [4.776384997670288, -13.74514537774601, -65.35303263337234],
  [-5.435455855934631, 4.645852612178535, 26.3124352495832],
] as const

const clamp01 = (x: number) => (Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0)

export type Rgb = [number, number, number]

/** RGB (0-255) of viridis at t in [0, 1]. */
export function viridis(t: number): Rgb {
  const x = clamp01(t)
  const rgb: Rgb = [0, 0, 0]
  for (let c = 0; c < 3; c++) {
    let v = 0
    for (let k = VIRIDIS.length - 1; k >= 0; k--) v = v * x + (VIRIDIS[k] as readonly number[])[c]!
    rgb[c] = Math.round(255 * clamp01(v))
  }
  return rgb
}

/** The ends of the diverging map (ColorBrewer RdBu's outer colours). */
export const DIVERGING_NEGATIVE: Rgb = [33, 102, 172]
export const DIVERGING_POSITIVE: Rgb = [178, 24, 43]

/** RGB of the diverging map at t in [-1, 1]: blue (negative, less), white (0), red (positive, more). */
export function diverging(t: number): Rgb {
  const x = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0))
  const end = x < 0 ? DIVERGING_NEGATIVE : DIVERGING_POSITIVE
  const a = Math.abs(x)
  return [0, 1, 2].map((c) => Math.round(255 + (end[c]! - 255) * a)) as Rgb
}

const css = ([r, g, b]: Rgb) => `rgb(${r},${g},${b})`

/** The diverging map as a Plotly colour scale (low → high), the same colours as `diverging`. */
export const DIVERGING_COLORSCALE: [number, string][] = [
  [0, css(DIVERGING_NEGATIVE)],
  [0.5, 'rgb(255,255,255)'],
  [1, css(DIVERGING_POSITIVE)],
]

/** Viridis as a Plotly colour scale (Plotly's own 'Viridis' is the same map). */
export const VIRIDIS_COLORSCALE: [number, string][] = Array.from({ length: 11 }, (_, i) => [
  i / 10,
  css(viridis(i / 10)),
])

/** An H×W float map as RGB bytes, through `colour` applied to `scale(value)`. */
export function colourise(
  values: ArrayLike<number>,
  colour: (t: number) => Rgb,
  scale: (v: number) => number,
): Uint8Array {
  const out = new Uint8Array(values.length * 3)
  for (let i = 0; i < values.length; i++) out.set(colour(scale(values[i] as number)), i * 3)
  return out
}
