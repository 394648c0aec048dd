/**
 * Series for plots, shared by the HTML report and the UI: thinning and smoothing of long per-step curves.
 */

/** Points kept per trace: older points are thinned so a long run draws as fast as a short one. */
export const MAX_POINTS_PER_TRACE = 2000

export interface Series {
  x: number[]
  y: number[]
}

/**
 * Caps a series at `max` points: the newest half is kept as is, the older points are thinned evenly, so the
 * live end stays exact while a long history still shows its shape.
 */
export function capPoints(series: Series, max = MAX_POINTS_PER_TRACE): Series {
  const n = series.x.length
  if (n <= max) return series
  const recent = Math.floor(max / 2)
  const olderCount = n - recent
  const keepOlder = max - recent
  const stride = olderCount / keepOlder
  const x: number[] = []
  const y: number[] = []
  for (let k = 0; k < keepOlder; k++) {
    const i = Math.floor(k * stride)
    x.push(series.x[i] as number)
    y.push(series.y[i] as number)
  }
  for (let i = olderCount; i < n; i++) {
    x.push(series.x[i] as number)
    y.push(series.y[i] as number)
  }
  return { x, y }
}

/**
 * TensorBoard's smoothing: an exponential moving average debiased at the start (so the first points are not
 * pulled toward zero); non-finite values pass through without touching the average.
 */
export function emaSmooth(values: readonly number[], weight: number): number[] {
  if (weight <= 0) return [...values]
  let last = 0
  let count = 0
  return values.map((value) => {
    if (!Number.isFinite(value)) return value
    last = last * weight + (1 - weight) * value
    count++
    const debias = 1 - Math.pow(weight, count)
    return last / debias
  })
}
