/**
 * PNG figures of one image's inspection, written by `r2b inspect`: a grid whose rows are the transfer points
 * and whose columns are the image, the teacher's map, the student's map, their difference and the student's
 * map over the image, with colour bars; and a heatmap of the image's gate values, blocks × channels, centred on
 * each convolution's mean. Colours as in the app and the report: viridis for maps; for differences, red where
 * the student attends more than its teacher (a gate above its convolution's mean), blue where less.
 */
import sharp from 'sharp'
import type { AttentionPoint } from '../../shared/records'
import { colourise, diverging, viridis } from './colormap'

const CELL = 112
const LABEL = 96
const GAP = 8
const HEADER = 28
const BAR = 150

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`)

async function pngCell(rgb: Uint8Array, width: number, height: number, channels: 1 | 3 = 3): Promise<string> {
  const png = await sharp(Buffer.from(rgb), { raw: { width, height, channels } })
    .resize(CELL, CELL, { kernel: 'nearest', fit: 'fill' })
    .png()
    .toBuffer()
  return `data:image/png;base64,${png.toString('base64')}`
}

/** A vertical colour bar with its end labels. */
async function colourBar(
  colour: (t: number) => [number, number, number],
  lo: number,
  hi: number,
  x: number,
  y: number,
  title: string,
) {
  const steps = 64
  const rgb = new Uint8Array(steps * 3)
  for (let i = 0; i < steps; i++) rgb.set(colour(1 - i / (steps - 1)), i * 3)
  const png = await sharp(Buffer.from(rgb), { raw: { width: 1, height: steps, channels: 3 } })
    .resize(16, 4 * CELL, { kernel: 'nearest', fit: 'fill' })
    .png()
    .toBuffer()
  const fmt = (v: number) => (Math.abs(v) >= 0.01 || v === 0 ? v.toFixed(2) : v.toExponential(1))
  return [
    `<text x="${x}" y="${y - 8}" class="small">${escape(title)}</text>`,
    `<image x="${x}" y="${y}" width="16" height="${4 * CELL}" href="data:image/png;base64,${png.toString('base64')}"/>`,
    `<text x="${x + 22}" y="${y + 10}" class="small">${fmt(hi)}</text>`,
    `<text x="${x + 22}" y="${y + 4 * CELL}" class="small">${fmt(lo)}</text>`,
  ].join('')
}

export interface AttentionFigureInput {
  title: string
  image: { pixels: Uint8Array; shape: [number, number, number] }
  points: AttentionPoint[]
}

/** Renders the attention grid to PNG bytes. Maps of one image: each point's arrays are [1, H, W]. */
export async function attentionFigure(input: AttentionFigureInput): Promise<Buffer> {
  const [h, w, c] = input.image.shape
  const hasTeacher = input.points.some((p) => p.teacher)
  const columns = hasTeacher
    ? ['image', 'teacher', 'student', 'student − teacher', 'student over image']
    : ['image', 'student', 'student over image']
  // One colour scale for every teacher and student map; a symmetric one for the differences.
  let max = 0
  let maxDiff = 0
  for (const p of input.points) {
    for (const v of p.student.data) max = Math.max(max, v)
    if (p.teacher) {
      p.teacher.data.forEach((v, i) => {
        max = Math.max(max, v)
        maxDiff = Math.max(maxDiff, Math.abs((p.student.data[i] ?? 0) - v))
      })
    }
  }
  max ||= 1
  maxDiff ||= 1
  const grey = c === 1 ? input.image.pixels : toGrey(input.image.pixels)
  const imageRgb = c === 3 ? input.image.pixels : expandGrey(input.image.pixels)
  const imageCell = await pngCell(imageRgb, w, h)

  const width = LABEL + columns.length * (CELL + GAP) + BAR
  const height = HEADER + 24 + input.points.length * (CELL + GAP)
  const parts: string[] = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="20" class="title">${escape(input.title)}</text>`,
    ...columns.map(
      (name, j) =>
        `<text x="${LABEL + j * (CELL + GAP) + CELL / 2}" y="${HEADER + 16}" class="head">${escape(name)}</text>`,
    ),
  ]
  for (const [row, point] of input.points.entries()) {
    const [, mh, mw] = point.student.shape as [number, number, number]
    const y = HEADER + 24 + row * (CELL + GAP)
    parts.push(`<text x="8" y="${y + CELL / 2 + 5}" class="label">${escape(point.point)}</text>`)
    const cells: string[] = [imageCell]
    if (point.teacher)
      cells.push(
        await pngCell(
          colourise(point.teacher.data, viridis, (v) => v / max),
          mw,
          mh,
        ),
      )
    cells.push(
      await pngCell(
        colourise(point.student.data, viridis, (v) => v / max),
        mw,
        mh,
      ),
    )
    if (point.teacher) {
      const diff = point.student.data.map((v, i) => v - (point.teacher!.data[i] ?? 0))
      cells.push(
        await pngCell(
          colourise(diff, diverging, (v) => v / maxDiff),
          mw,
          mh,
        ),
      )
    }
    cells.push(await overlay(grey, w, h, point.student.data, mw, mh, max))
    cells.forEach((href, j) =>
      parts.push(
        `<image x="${LABEL + j * (CELL + GAP)}" y="${y}" width="${CELL}" height="${CELL}" href="${href}"/>`,
      ),
    )
  }
  const barX = LABEL + columns.length * (CELL + GAP) + 12
  parts.push(await colourBar(viridis, 0, max, barX, HEADER + 40, 'attention'))
  if (hasTeacher)
    parts.push(
      await colourBar(
        (t) => diverging(2 * t - 1),
        -maxDiff,
        maxDiff,
        barX + 70,
        HEADER + 40,
        'S − T (red: S more)',
      ),
    )
  return render(width, height, parts)
}

/** The gate values of one image: rows are the binary convolutions, columns their output channels. */
export async function gateFigure(
  title: string,
  gates: { block: string; values: Float32Array }[],
): Promise<Buffer> {
  const channels = Math.max(1, ...gates.map((g) => g.values.length))
  const cellW = Math.max(2, Math.min(12, Math.floor(720 / channels)))
  const cellH = 18
  // Diverging, centred on each convolution's mean gate for this image: red scales a channel up relative to
  // the block's other channels, blue down (the colour convention of every workbench figure).
  const centres = gates.map((g) =>
    g.values.length ? g.values.reduce((a, b) => a + b, 0) / g.values.length : 0.5,
  )
  let range = 0
  gates.forEach((g, r) => g.values.forEach((v) => (range = Math.max(range, Math.abs(v - centres[r]!)))))
  range ||= 1e-6
  // Grey where a narrower convolution has no such channel (white means "at the mean").
  const rgb = new Uint8Array(gates.length * channels * 3).fill(215)
  gates.forEach((g, r) =>
    g.values.forEach((v, k) => rgb.set(diverging((v - centres[r]!) / range), (r * channels + k) * 3)),
  )
  const map = await sharp(Buffer.from(rgb), {
    raw: { width: channels, height: Math.max(1, gates.length), channels: 3 },
  })
    .resize(channels * cellW, Math.max(1, gates.length) * cellH, { kernel: 'nearest', fit: 'fill' })
    .png()
    .toBuffer()
  const mapW = channels * cellW
  const width = LABEL + mapW + BAR
  const height = HEADER + 24 + gates.length * cellH + 40
  const parts = [
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="8" y="20" class="title">${escape(title)}</text>`,
    `<image x="${LABEL}" y="${HEADER + 16}" width="${mapW}" height="${gates.length * cellH}" href="data:image/png;base64,${map.toString('base64')}"/>`,
    ...gates.map(
      (g, r) => `<text x="8" y="${HEADER + 16 + r * cellH + 13}" class="small">${escape(g.block)}</text>`,
    ),
    `<text x="${LABEL + mapW / 2}" y="${HEADER + 16 + gates.length * cellH + 20}" class="head">output channel (0–${channels - 1}; grey: no such channel)</text>`,
  ]
  parts.push(
    await colourBar(
      (t) => diverging(2 * t - 1),
      -range,
      range,
      LABEL + mapW + 16,
      HEADER + 40,
      'gate − its mean',
    ),
  )
  return render(width, Math.max(height, HEADER + 60 + 4 * CELL), parts)
}

async function overlay(
  grey: Uint8Array,
  w: number,
  h: number,
  map: Float32Array,
  mw: number,
  mh: number,
  max: number,
): Promise<string> {
  // The map upsampled (bilinear) to the image, blended half and half with the image in grey.
  const up = await sharp(Buffer.from(colourise(map, viridis, (v) => v / max)), {
    raw: { width: mw, height: mh, channels: 3 },
  })
    .resize(w, h, { kernel: 'linear', fit: 'fill' })
    .raw()
    .toBuffer()
  const out = new Uint8Array(w * h * 3)
  for (let i = 0; i < w * h; i++)
    for (let k = 0; k < 3; k++) out[i * 3 + k] = Math.round(0.5 * (grey[i] ?? 0) + 0.5 * (up[i * 3 + k] ?? 0))
  return pngCell(out, w, h)
}

function toGrey(rgb: Uint8Array): Uint8Array {
  const out = new Uint8Array(rgb.length / 3)
  for (let i = 0; i < out.length; i++)
    out[i] = Math.round(0.299 * rgb[i * 3]! + 0.587 * rgb[i * 3 + 1]! + 0.114 * rgb[i * 3 + 2]!)
  return out
}

function expandGrey(grey: Uint8Array): Uint8Array {
  const out = new Uint8Array(grey.length * 3)
  grey.forEach((v, i) => out.fill(v, i * 3, i * 3 + 3))
  return out
}

function render(width: number, height: number, parts: string[]): Promise<Buffer> {
  const style =
    '<style>text{font-family:sans-serif;fill:#1d2129}.title{font-size:15px;font-weight:bold}.head{font-size:12px;text-anchor:middle}.label{font-size:13px}.small{font-size:11px}</style>'
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${style}${parts.join('')}</svg>`
  return sharp(Buffer.from(svg)).png().toBuffer()
}
