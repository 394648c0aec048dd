import { useEffect, useRef } from 'react'
import type { Rgb } from '../../../shared/figures/colormap'

export interface HeatmapCanvasProps {
  /** Row-major values, height × width. */
  values: ArrayLike<number>
  height: number
  width: number
  /** Colour of a value already mapped to the colour map's domain. */
  colour: (t: number) => Rgb
  /** Value → the colour map's domain ([0, 1] for viridis, [-1, 1] for the diverging map). */
  scale: (value: number) => number
  label: string
  /** Which map this is (teacher, student, difference, overlay): for tests and styles. */
  role: string
  opacity?: number
  onHover?: (cell: { x: number; y: number; value: number } | null) => void
}

/**
 * A map drawn cell for cell on a canvas, scaled up without smoothing by CSS: dozens of them draw in a few
 * milliseconds where a plotting library's heatmap takes tens each, and they size with their grid cell.
 * The value range is on the element (`data-min`, `data-max`) for tests and assistive text.
 */
export function HeatmapCanvas({
  values,
  height,
  width,
  colour,
  scale,
  label,
  role,
  opacity = 1,
  onHover,
}: HeatmapCanvasProps) {
  const canvas = useRef<HTMLCanvasElement>(null)
  let min = Infinity
  let max = -Infinity
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number
    if (v < min) min = v
    if (v > max) max = v
  }
  useEffect(() => {
    const context = canvas.current?.getContext('2d')
    if (!context) return
    const image = context.createImageData(width, height)
    for (let i = 0; i < width * height; i++) {
      const [r, g, b] = colour(scale(values[i] as number))
      image.data[i * 4] = r
      image.data[i * 4 + 1] = g
      image.data[i * 4 + 2] = b
      image.data[i * 4 + 3] = Math.round(255 * opacity)
    }
    context.putImageData(image, 0, 0)
  }, [values, height, width, colour, scale, opacity])
  return (
    <canvas
      ref={canvas}
      width={width}
      height={height}
      role="img"
      aria-label={`${label}: ${width}×${height}, values ${min.toFixed(3)} to ${max.toFixed(3)}`}
      data-role={role}
      data-min={min}
      data-max={max}
      onMouseMove={
        onHover
          ? (event) => {
              const box = event.currentTarget.getBoundingClientRect()
              const x = Math.min(width - 1, Math.floor(((event.clientX - box.left) / box.width) * width))
              const y = Math.min(height - 1, Math.floor(((event.clientY - box.top) / box.height) * height))
              onHover({ x, y, value: values[y * width + x] as number })
            }
          : undefined
      }
      onMouseLeave={onHover ? () => onHover(null) : undefined}
    />
  )
}

/** A horizontal colour bar with its range and what its ends mean. */
export function ColourBar({
  title,
  colour,
  from,
  to,
  low,
  high,
  format = (v) => v.toPrecision(3),
}: {
  title: string
  colour: (t: number) => Rgb
  /** The colour map's domain at the bar's ends ([0, 1], or [-1, 1]). */
  from: number
  to: number
  /** The values at the ends. */
  low: number
  high: number
  format?: (v: number) => string
}) {
  const canvas = useRef<HTMLCanvasElement>(null)
  useEffect(() => {
    const context = canvas.current?.getContext('2d')
    if (!context) return
    const image = context.createImageData(128, 1)
    for (let i = 0; i < 128; i++) {
      const [r, g, b] = colour(from + ((to - from) * i) / 127)
      image.data.set([r, g, b, 255], i * 4)
    }
    context.putImageData(image, 0, 0)
  }, [colour, from, to])
  return (
    <div className="colour-bar" role="img" aria-label={`${title}: ${format(low)} to ${format(high)}`}>
      <span className="bar-title">{title}</span>
      <span>{format(low)}</span>
      <canvas ref={canvas} width={128} height={1} />
      <span>{format(high)}</span>
    </div>
  )
}
