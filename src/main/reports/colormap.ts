/**
 * Colour maps for heatmaps written outside the browser (PNG figures). Viridis for magnitudes (perceptually
 * uniform, readable in grey and by colour-blind readers); a blue–white–red diverging map for differences.
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

/** RGB (0-255) of viridis at t in [0, 1]. */
export function viridis(t: number): [number, number, number] {
  const x = clamp01(t)
  const rgb: [number, number, number] = [0, 0, 0]
  for (let c = 0; c < 3; c++) {
    let v = 0
    for (let k = VIRIDIS.length - 1; k >= 0; k--) v = v * x + (VIRIDIS[k] as readonly number[])[c]!
    rgb[c] = Math.round(255 * clamp01(v))
  }
  return rgb
}

/** RGB of a diverging map at t in [-1, 1]: blue (negative), white (0), red (positive). */
export function diverging(t: number): [number, number, number] {
  const x = Math.max(-1, Math.min(1, Number.isFinite(t) ? t : 0))
  const blue: [number, number, number] = [33, 102, 172]
  const red: [number, number, number] = [178, 24, 43]
  const end = x < 0 ? blue : red
  const a = Math.abs(x)
  return [0, 1, 2].map((c) => Math.round(255 + (end[c]! - 255) * a)) as [number, number, number]
}

/** An H×W float map as RGB bytes, through `colour` applied to `scale(value)`. */
export function colourise(
  values: ArrayLike<number>,
  colour: (t: number) => [number, number, number],
  scale: (v: number) => number,
): Uint8Array {
  const out = new Uint8Array(values.length * 3)
  for (let i = 0; i < values.length; i++) out.set(colour(scale(values[i] as number)), i * 3)
  return out
}
