/**
 * The binary deployment file (`.r2bx`): one self-describing file per exported model.
 *
 *     "R2BXPORT" | u32 version | u32 header bytes | header JSON (space-padded to 8 bytes)
 *     | payload: each tensor 8-byte aligned, binary weights as a dense bit stream (32 per little-endian
 *       uint32 word), real parameters as little-endian float32
 *     | sha256 of everything before it (32 bytes)
 *
 * Binary weights are stored densely (not padded to 32 channels per pixel) so the file stays at the
 * theoretical size at any width: the runtime lays them out for its kernels when it loads them.
 * Pure bytes in, bytes out: no files, no tfjs.
 */
import { createHash } from 'node:crypto'
import { z } from 'zod'
import { DeployError } from './errors'

export const MAGIC = 'R2BXPORT'
export const EXPORT_VERSION = 1
const PREFIX_BYTES = 16
const CHECKSUM_BYTES = 32
const ALIGN = 8

const ExportTensorEntry = z.object({
  name: z.string().min(1),
  kind: z.enum(['bits', 'float32']),
  /** Logical shape; for bits the tfjs kernel shape [kh, kw, cin, cout]. */
  shape: z.array(z.int().positive()),
  /** Byte offset from the start of the payload. */
  offset: z.int().nonnegative(),
  bytes: z.int().nonnegative(),
})
export type ExportTensorEntry = z.infer<typeof ExportTensorEntry>

export const ExportHeader = z.object({
  format: z.literal('r2b-binary-model'),
  version: z.literal(EXPORT_VERSION),
  /** The checkpoint it was folded from. Files written before format 2 of run folders say `epoch`. */
  source: z.preprocess(
    (v) =>
      typeof v === 'object' && v !== null && 'epoch' in v && !('epochsCompleted' in v)
        ? { ...v, epochsCompleted: (v as { epoch: unknown }).epoch }
        : v,
    z.object({ runId: z.string(), stage: z.string(), epochsCompleted: z.int().nonnegative() }),
  ),
  model: z.object({
    width: z.number().positive(),
    stem: z.enum(['imagenet', 'cifar']),
    downsample: z.enum(['real', 'binary']),
    scaling: z.enum(['gate', 'learned', 'none']),
    weightScale: z.enum(['none', 'mean', 'learned']),
    /** What the binary convolutions were trained to pad with: +1 (larq pad_values=1) or 0 (tfjs). */
    padding: z.enum(['one', 'zero']),
    inputSize: z.int().positive(),
    /** Set when the model trained on crops of images stored this large: an image is resized to it, then its centred input window taken. */
    storedSize: z.int().positive().optional(),
    channels: z.int().positive(),
    classes: z.int().min(2),
  }),
  classes: z.array(z.string()),
  /** Per-channel (pixel/255 − mean) / std, as the dataset reader normalises. */
  normalisation: z.object({ mean: z.array(z.number()), std: z.array(z.number()) }),
  /** Bit b of the stream is weight [o][ky][kx][c] in row-major order; 1 means −1 (sign(0) = +1). */
  bitOrder: z.literal('cout-kh-kw-cin, lsb-first, 1 = negative'),
  binaryParams: z.int().nonnegative(),
  realParams: z.int().nonnegative(),
  tensors: z.array(ExportTensorEntry),
})
export type ExportHeader = z.infer<typeof ExportHeader>

export type ExportTensor =
  | { name: string; kind: 'float32'; shape: number[]; values: Float32Array }
  /** `signs` are any reals: a weight is −1 where negative, +1 otherwise. Shape [kh, kw, cin, cout]. */
  | { name: string; kind: 'bits'; shape: number[]; signs: Float32Array }

export interface DecodedTensorFloat {
  kind: 'float32'
  shape: number[]
  values: Float32Array
}
export interface DecodedTensorBits {
  kind: 'bits'
  shape: number[]
  /** Dense stream in `bitOrder`. */
  bits: Uint32Array
}
export type DecodedTensor = DecodedTensorFloat | DecodedTensorBits

export interface DecodedExport {
  header: ExportHeader
  tensors: Map<string, DecodedTensor>
}

export interface ExportSizeReport {
  /** Bytes of the file. */
  fileBytes: number
  /** 1 bit per binary weight + 32 bits per real parameter stored. */
  minimumBytes: number
  binaryParams: number
  realParams: number
  /** fileBytes − minimumBytes: the prefix, header, per-tensor alignment and checksum. */
  overheadBytes: number
  headerBytes: number
  alignmentBytes: number
}

const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN
const size = (shape: number[]): number => shape.reduce((a, b) => a * b, 1)

/** Packs signs from [kh, kw, cin, cout] into the dense stream ordered [cout][kh][kw][cin]. */
export function packSignStream(signs: Float32Array, shape: number[]): Uint32Array {
  const [kh, kw, cin, cout] = shape as [number, number, number, number]
  const total = kh * kw * cin * cout
  const out = new Uint32Array(Math.ceil(total / 32))
  let bit = 0
  for (let o = 0; o < cout; o++)
    for (let y = 0; y < kh; y++)
      for (let x = 0; x < kw; x++)
        for (let c = 0; c < cin; c++, bit++) {
          if ((signs[((y * kw + x) * cin + c) * cout + o] as number) < 0) out[bit >>> 5]! |= 1 << (bit & 31)
        }
  return out
}

export function encodeExport(
  meta: Omit<ExportHeader, 'format' | 'version' | 'bitOrder' | 'binaryParams' | 'realParams' | 'tensors'>,
  tensors: ExportTensor[],
): { bytes: Uint8Array; header: ExportHeader; report: ExportSizeReport } {
  const entries: ExportTensorEntry[] = []
  const blobs: Uint8Array[] = []
  let offset = 0
  let binaryParams = 0
  let realParams = 0
  for (const t of tensors) {
    let blob: Uint8Array
    if (t.kind === 'bits') {
      if (t.shape.length !== 4) throw new Error(`${t.name}: binary weights need a 4-d kernel shape`)
      const count = size(t.shape)
      binaryParams += count
      const words = packSignStream(t.signs, t.shape)
      // Only whole bytes are stored: the last word's unused bytes are dropped.
      blob = new Uint8Array(words.buffer, 0, Math.ceil(count / 8))
    } else {
      if (t.values.length !== size(t.shape)) throw new Error(`${t.name}: ${t.values.length} values`)
      realParams += t.values.length
      blob = new Uint8Array(t.values.buffer, t.values.byteOffset, t.values.byteLength)
    }
    entries.push({ name: t.name, kind: t.kind, shape: t.shape, offset, bytes: blob.byteLength })
    blobs.push(blob)
    offset = align(offset + blob.byteLength)
  }
  const header: ExportHeader = {
    ...meta,
    format: 'r2b-binary-model',
    version: EXPORT_VERSION,
    bitOrder: 'cout-kh-kw-cin, lsb-first, 1 = negative',
    binaryParams,
    realParams,
    tensors: entries,
  }
  const json = new TextEncoder().encode(JSON.stringify(header))
  const headerBytes = align(json.byteLength)
  const payloadStart = PREFIX_BYTES + headerBytes
  const total = payloadStart + offset + CHECKSUM_BYTES
  const bytes = new Uint8Array(total)
  const view = new DataView(bytes.buffer)
  bytes.set(new TextEncoder().encode(MAGIC), 0)
  view.setUint32(8, EXPORT_VERSION, true)
  view.setUint32(12, headerBytes, true)
  bytes.fill(0x20, PREFIX_BYTES, payloadStart)
  bytes.set(json, PREFIX_BYTES)
  entries.forEach((e, i) => bytes.set(blobs[i]!, payloadStart + e.offset))
  const digest = createHash('sha256')
    .update(bytes.subarray(0, total - CHECKSUM_BYTES))
    .digest()
  bytes.set(digest, total - CHECKSUM_BYTES)
  // Bit streams are rounded to whole bytes: the sub-byte remainder is part of the minimum's rounding.
  const minimumBytes = Math.ceil(binaryParams / 8) + realParams * 4
  return {
    bytes,
    header,
    report: {
      fileBytes: total,
      minimumBytes,
      binaryParams,
      realParams,
      overheadBytes: total - minimumBytes,
      headerBytes: PREFIX_BYTES + headerBytes + CHECKSUM_BYTES,
      alignmentBytes: total - minimumBytes - (PREFIX_BYTES + headerBytes + CHECKSUM_BYTES),
    },
  }
}

/** Reads and verifies an export; every way a file can be wrong is a DeployError with a one-line message. */
export function decodeExport(bytes: Uint8Array, label = 'file'): DecodedExport {
  if (bytes.byteLength < PREFIX_BYTES || new TextDecoder().decode(bytes.subarray(0, 8)) !== MAGIC) {
    throw new DeployError(`${label} is not an R2B binary model export (no R2BXPORT signature)`)
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const version = view.getUint32(8, true)
  if (version !== EXPORT_VERSION) {
    throw new DeployError(
      `${label} is export format version ${version}; this workbench reads version ${EXPORT_VERSION}`,
    )
  }
  const headerBytes = view.getUint32(12, true)
  if (PREFIX_BYTES + headerBytes + CHECKSUM_BYTES > bytes.byteLength) {
    throw new DeployError(`${label} is truncated (${bytes.byteLength} bytes, header alone needs more)`)
  }
  const end = bytes.byteLength - CHECKSUM_BYTES
  const digest = createHash('sha256').update(bytes.subarray(0, end)).digest()
  if (!digest.equals(Buffer.from(bytes.subarray(end)))) {
    throw new DeployError(`${label} is truncated or corrupted: its sha256 checksum does not match`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerBytes)))
  } catch {
    throw new DeployError(`${label}: its header is not valid JSON`)
  }
  const result = ExportHeader.safeParse(parsed)
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new DeployError(`${label}: invalid header (${issue?.path.join('.')}: ${issue?.message})`)
  }
  const header = result.data
  const payloadStart = PREFIX_BYTES + headerBytes
  const tensors = new Map<string, DecodedTensor>()
  for (const e of header.tensors) {
    const start = payloadStart + e.offset
    const expected = e.kind === 'bits' ? Math.ceil(size(e.shape) / 8) : size(e.shape) * 4
    if (e.bytes !== expected || start + e.bytes > end) {
      throw new DeployError(`${label}: tensor ${e.name} does not fit its declared shape or the file`)
    }
    // Copies give aligned typed arrays independent of the file buffer.
    if (e.kind === 'float32') {
      const values = new Float32Array(size(e.shape))
      new Uint8Array(values.buffer).set(bytes.subarray(start, start + e.bytes))
      tensors.set(e.name, { kind: 'float32', shape: e.shape, values })
    } else {
      const bits = new Uint32Array(Math.ceil(size(e.shape) / 32))
      new Uint8Array(bits.buffer).set(bytes.subarray(start, start + e.bytes))
      tensors.set(e.name, { kind: 'bits', shape: e.shape, bits })
    }
  }
  return { header, tensors }
}
