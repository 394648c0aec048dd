/**
 * Files shared by the conformance scripts and the PyTorch tests (python/tests): tensor bundles (a JSON index
 * plus one little-endian float32 buffer, like a checkpoint) and checkpoint folders as the run store writes
 * them (`manifest.json` with `sha256` and `bytes`, `data.bin`).
 */
import { createHash } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Checkpoint } from '../../src/main/engine/checkpoint'
import type { CheckpointManifest } from '../../src/shared/checkpoint'

export interface BundleEntry {
  shape: number[]
  offset: number
}

/** Named float32 arrays with their shapes, written as `<name>.json` (the index) and `<name>.bin`. */
export class TensorBundle {
  private readonly arrays: { name: string; shape: number[]; data: Float32Array }[] = []
  private readonly names = new Set<string>()

  add(name: string, shape: number[], data: ArrayLike<number>): void {
    if (this.names.has(name)) throw new Error(`bundle: duplicate ${name}`)
    const size = shape.reduce((a, b) => a * b, 1)
    if (data.length !== size)
      throw new Error(`bundle: ${name} has ${data.length} values for shape [${shape}]`)
    this.names.add(name)
    this.arrays.push({ name, shape, data: Float32Array.from(data) })
  }

  async write(dir: string, name: string): Promise<void> {
    const total = this.arrays.reduce((n, a) => n + a.data.length, 0)
    const payload = new Float32Array(total)
    const index: Record<string, BundleEntry> = {}
    let offset = 0
    for (const a of this.arrays) {
      payload.set(a.data, offset)
      index[a.name] = { shape: a.shape, offset }
      offset += a.data.length
    }
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, `${name}.bin`), new Uint8Array(payload.buffer))
    await writeFile(join(dir, `${name}.json`), `${JSON.stringify(index)}\n`)
  }
}

/** Reads a bundle written by TensorBundle or by python/tests (same format). */
export async function readBundle(
  dir: string,
  name: string,
): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const index = JSON.parse(await readFile(join(dir, `${name}.json`), 'utf8')) as Record<string, BundleEntry>
  const bytes = await readFile(join(dir, `${name}.bin`))
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
  const out = new Map<string, { shape: number[]; data: Float32Array }>()
  for (const [key, entry] of Object.entries(index)) {
    const size = entry.shape.reduce((a, b) => a * b, 1)
    out.set(key, { shape: entry.shape, data: all.subarray(entry.offset, entry.offset + size) })
  }
  return out
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A checkpoint folder in the run store's format. */
export async function writeCheckpointDir(dir: string, checkpoint: Checkpoint): Promise<void> {
  const data = new Uint8Array(checkpoint.data)
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'data.bin'), data)
  const manifest = { ...checkpoint.manifest, sha256: sha256(data), bytes: data.byteLength }
  await writeFile(join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
}

/** Reads a checkpoint folder, refusing one whose data does not match the manifest's checksum. */
export async function readCheckpointDir(dir: string): Promise<Checkpoint> {
  const bytes = await readFile(join(dir, 'data.bin'))
  const stored = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as CheckpointManifest & {
    sha256?: string
    bytes?: number
  }
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (stored.sha256 !== undefined && sha256(data) !== stored.sha256)
    throw new Error(`${dir}: data.bin does not match the manifest's sha256`)
  if (stored.bytes !== undefined && stored.bytes !== data.byteLength)
    throw new Error(`${dir}: data.bin has ${data.byteLength} bytes, the manifest says ${stored.bytes}`)
  const { sha256: _sha, bytes: _bytes, ...manifest } = stored
  return { manifest: manifest as CheckpointManifest, data: data.slice().buffer }
}
