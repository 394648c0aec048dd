import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { exportRun } from '../../../../src/main/deploy/export-run'
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
