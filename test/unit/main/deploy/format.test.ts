import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { writeFile } from 'node:fs/promises'
import sharp from 'sharp'
import { exportRun, imageInput } from '../../../../src/main/deploy/export-run'
import { foldCheckpoint } from '../../../../src/main/deploy/fold'
import { decodeExport } from '../../../../src/main/deploy/format'
import { initBackend } from '../../../../src/main/backend/backend'
import { RunStore } from '../../../../src/main/runs/run-store'
import { binaryBuild, exportOf, randomBinaryCheckpoint } from './support'

beforeAll(async () => {
  await initBackend('wasm')
})

const meta = {
  runId: 'r',
  stage: 'bnn',
  classes: Array.from({ length: 10 }, (_, i) => `c${i}`),
  normalisation: { mean: [0.5], std: [0.25] },
}

async function exported() {
  return exportOf(await randomBinaryCheckpoint(binaryBuild({ width: 0.125 })), meta)
}

describe('the input of a model trained on crops of a larger store', () => {
  it('records the stored size, and predict takes the centred window of the image at that size', async () => {
    const checkpoint = await randomBinaryCheckpoint(binaryBuild({ width: 0.125 }))
    const { bytes } = exportOf(checkpoint, { ...meta, storedSize: 17 })
    const { header } = decodeExport(bytes)
    expect(header.model).toMatchObject({ inputSize: 13, storedSize: 17 })
    // A 30×20 gradient: the shorter side goes to 17, then the centred 13×13 window, offset (17 − 13 + 1) >> 1 = 2.
    const dir = await mkdtemp(join(tmpdir(), 'r2b-crop-input-'))
    const raw = Buffer.from(
      Array.from({ length: 30 * 20 }, (_, i) => ((i % 30) * 8 + Math.floor(i / 30)) & 255),
    )
    const file = join(dir, 'gradient.png')
    await writeFile(
      file,
      await sharp(raw, { raw: { width: 30, height: 20, channels: 1 } })
        .png()
        .toBuffer(),
    )
    const resized = await sharp(file)
      .resize(17, 17, { fit: 'cover', position: 'centre' })
      .grayscale()
      .raw()
      .toBuffer()
    const expected: number[] = []
    for (let y = 2; y < 15; y++)
      for (let x = 2; x < 15; x++) expected.push((resized[y * 17 + x]! / 255 - 0.5) / 0.25)
    const { values } = await imageInput(file, header)
    expect(Array.from(values)).toEqual(expected.map((v) => Math.fround(v)))
    // Without a stored size the whole image is resized to the input.
    const plain = await imageInput(file, decodeExport(exportOf(checkpoint, meta).bytes).header)
    expect(Array.from(plain.values)).not.toEqual(Array.from(values))
  })
})

describe('the export file', () => {
  it('is the theoretical minimum plus only its header and alignment', async () => {
    const { bytes, report, header } = await exported()
    expect(report.fileBytes).toBe(bytes.byteLength)
    expect(report.minimumBytes).toBe(Math.ceil(report.binaryParams / 8) + 4 * report.realParams)
    expect(report.overheadBytes).toBe(report.headerBytes + report.alignmentBytes)
    expect(report.alignmentBytes).toBeLessThan(8 * header.tensors.length)
    // 16 binary 3×3 convs at width 0.125: 8,16,32,64 channels.
    const convs = [8, 8, 8, 8, 16, 16, 16, 16, 32, 32, 32, 32, 64, 64, 64, 64]
    const expected = convs.reduce(
      (sum, c, i) => sum + 9 * (i === 4 || i === 8 || i === 12 ? c / 2 : c) * c,
      0,
    )
    expect(report.binaryParams).toBe(expected)
  })

  it('reads back what was written', async () => {
    const { bytes, header } = await exported()
    const decoded = decodeExport(bytes)
    expect(decoded.header).toEqual(header)
    expect(decoded.header.model.padding).toBe('one')
    expect(decoded.tensors.get('block_1a.conv.bits')?.kind).toBe('bits')
  })

  it('refuses files that are not an export, truncated, tampered with or of another version', async () => {
    const { bytes } = await exported()
    expect(() => decodeExport(new TextEncoder().encode('{"format":"r2b"}'), 'x')).toThrow(
      /not an R2B binary model/,
    )
    expect(() => decodeExport(bytes.subarray(0, bytes.length - 100), 'x')).toThrow(/truncated or corrupted/)
    expect(() => decodeExport(bytes.subarray(0, 40), 'x')).toThrow(/truncated/)
    const tampered = bytes.slice()
    tampered[tampered.length - 200]! ^= 1
    expect(() => decodeExport(tampered, 'x')).toThrow(/checksum/)
    const future = bytes.slice()
    new DataView(future.buffer).setUint32(8, 2, true)
    expect(() => decodeExport(future, 'x')).toThrow(/version 2; this workbench reads version 1/)
  })

  it('refuses a stage that is not fully binary', async () => {
    for (const overrides of [{ activation: 'tanh' as const }, { weights: 'real' as const }]) {
      const checkpoint = await randomBinaryCheckpoint(binaryBuild(overrides))
      expect(() => foldCheckpoint(checkpoint, meta)).toThrow(/not fully binary/)
    }
  })

  it('exportRun writes nothing when it fails', async () => {
    const home = await mkdtemp(join(tmpdir(), 'r2b-export-'))
    const out = await mkdtemp(join(tmpdir(), 'r2b-export-out-'))
    await expect(exportRun(new RunStore(home), 'no-such-run', 'bnn', join(out, 'm.r2bx'))).rejects.toThrow(
      /no run/,
    )
    expect(await readdir(out)).toEqual([])
  })
})
