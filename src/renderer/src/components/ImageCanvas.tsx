import { useEffect, useRef } from 'react'

export interface ImageCanvasProps {
  /** H×W×C uint8 pixels of one image. */
  pixels: Uint8Array
  shape: readonly [number, number, number]
  /** Displayed size in CSS pixels (square), or a CSS length such as '100%'. */
  size?: number | string
  label: string
}

/** One stored image, drawn pixel-exact and scaled up without smoothing. */
export function ImageCanvas({ pixels, shape, size = 56, label }: ImageCanvasProps) {
  const canvas = useRef<HTMLCanvasElement>(null)
  useEffect(() => {
    const context = canvas.current?.getContext('2d')
    if (!context) return
    const [height, width, channels] = shape
    const image = context.createImageData(width, height)
    for (let i = 0; i < width * height; i++) {
      const r = pixels[i * channels] ?? 0
      image.data[i * 4] = r
      image.data[i * 4 + 1] = channels === 3 ? (pixels[i * 3 + 1] ?? 0) : r
      image.data[i * 4 + 2] = channels === 3 ? (pixels[i * 3 + 2] ?? 0) : r
      image.data[i * 4 + 3] = 255
    }
    context.putImageData(image, 0, 0)
  }, [pixels, shape])
  return (
    <canvas
      ref={canvas}
      className="pixelated"
      width={shape[1]}
      height={shape[0]}
      style={{ width: size, height: size }}
      role="img"
      aria-label={label}
    />
  )
}

/** The image at `index` of a batch of n×H×W×C pixels. */
export function imageAt(
  pixels: Uint8Array,
  shape: readonly [number, number, number],
  index: number,
): Uint8Array {
  const size = shape[0] * shape[1] * shape[2]
  return pixels.subarray(index * size, (index + 1) * size)
}
