import { beforeAll, describe, expect, it } from 'vitest'
import { testBackend } from '../../../support/test-backend'
import { initBackend } from '../../../../src/main/backend/backend'
import { summariseModel, summaryBuild } from '../../../../src/main/engine/summary'

beforeAll(async () => {
  await initBackend(testBackend('wasm'))
})

/**
 * A fully binary R2B ResNet-18 at width 1/64 (channels 1, 2, 4, 8) on 8×8×1 inputs, 3 classes, CIFAR stem, real
 * downsample. Each half block, written out: [in channels, out channels, output size, downsample shortcut].
 */
const halfBlocks: [number, number, number, boolean][] = [
  [1, 1, 8, false],
  [1, 1, 8, false],
  [1, 1, 8, false],
  [1, 1, 8, false], // blocks 1-2
  [1, 2, 4, true],
  [2, 2, 4, false],
  [2, 2, 4, false],
  [2, 2, 4, false], // blocks 3-4
  [2, 4, 2, true],
  [4, 4, 2, false],
  [4, 4, 2, false],
  [4, 4, 2, false], // blocks 5-6
  [4, 8, 1, true],
  [8, 8, 1, false],
  [8, 8, 1, false],
  [8, 8, 1, false], // blocks 7-8
]

function handCount() {
  let binary = 0
  let float = 0
  let nonTrainable = 0
  let bops = 0
  let flops = 0
  // stem: 3×3 conv 1→1 over 8×8, then BN(1)
  float += 9
  flops += 8 * 8 * 9
  float += 2
  nonTrainable += 2
  for (const [cin, cout, size, shortcut] of halfBlocks) {
    float += 2 * cin // BN gamma, beta
    nonTrainable += 2 * cin // BN moving mean, variance
    binary += 9 * cin * cout
    bops += size * size * 9 * cin * cout
    const hidden = Math.max(1, Math.floor(cin / 8))
    float += cin * hidden + hidden * cout // gate
    flops += cin * hidden + hidden * cout + size * size * cout
    float += cout // PReLU
    if (shortcut) {
      float += cin * cout + 2 * cout // real 1×1 conv + BN
      nonTrainable += 2 * cout
      flops += size * size * cin * cout
    }
  }
  float += 8 * 3 + 3 // dense head
  flops += 8 * 3
  return { binary, float, nonTrainable, bops, flops }
}

describe('model summary', () => {
  it('totals for a small configuration match a hand count', () => {
    const { totals, layers } = summariseModel(
      summaryBuild({
        model: 'r2b',
        stage: 'bnn',
        input: 8,
        channels: 1,
        classes: 3,
        stem: 'cifar',
        downsample: 'real',
        width: 1 / 64,
      }),
    )
    const hand = handCount()
    // Summed on paper from the table above, as a check on the loop itself.
    expect(hand).toEqual({ binary: 2682, float: 387, nonTrainable: 136, bops: 8352, flops: 1289 })
    expect(totals).toMatchObject({
      params: hand.binary + hand.float + hand.nonTrainable,
      trainableParams: hand.binary + hand.float,
      nonTrainableParams: hand.nonTrainable,
      binaryParams: hand.binary,
      bops: hand.bops,
      flops: hand.flops,
      packedBytes: hand.binary / 8 + (hand.float + hand.nonTrainable) * 4,
      float32Bytes: (hand.binary + hand.float + hand.nonTrainable) * 4,
    })
    expect(totals.binarisedMacFraction).toBeCloseTo(8352 / (8352 + 1289), 10)
    expect(layers.filter((l) => l.kind === 'QuantConv2D')).toHaveLength(16)
    expect(layers.find((l) => l.name === 'block_3a.conv')).toMatchObject({
      inputPrecision: 1,
      outputShape: [4, 4, 2],
    })
  })

  it('a binary downsample moves the shortcut MACs to BOPs and its weights to 1 bit', () => {
    const base = {
      model: 'r2b',
      stage: 'bnn',
      input: 8,
      channels: 1,
      classes: 3,
      stem: 'cifar',
      width: 1 / 64,
    } as const
    const real = summariseModel(summaryBuild({ ...base, downsample: 'real' })).totals
    const binary = summariseModel(summaryBuild({ ...base, downsample: 'binary' })).totals
    const shortcutMacs = 4 * 4 * 1 * 2 + 2 * 2 * 2 * 4 + 1 * 1 * 4 * 8
    expect(binary.bops - real.bops).toBe(shortcutMacs)
    expect(real.flops - binary.flops).toBe(shortcutMacs)
    expect(binary.binaryParams - real.binaryParams).toBe(1 * 2 + 2 * 4 + 4 * 8)
  })

  it('the real teacher has no binary parameters or BOPs', () => {
    const totals = summariseModel(
      summaryBuild({
        model: 'teacher',
        stage: 'fp',
        input: 32,
        channels: 3,
        classes: 10,
        stem: 'auto',
        downsample: 'real',
        width: 0.25,
      }),
    ).totals
    expect(totals.binaryParams).toBe(0)
    expect(totals.bops).toBe(0)
    expect(totals.compressionRatio).toBe(1)
  })
})
