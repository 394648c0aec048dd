import { describe, expect, it } from 'vitest'
import {
  binaryConvJs,
  binaryConvLayer,
  convGeometry,
  packActivations,
  signConvReference,
} from '../../../../src/main/deploy/binary-conv'
import { packSignStream } from '../../../../src/main/deploy/format'
import { Rng } from '../../../../src/main/engine/random'

export interface ConvCase {
  n: number
  h: number
  w: number
  cin: number
  cout: number
  k: number
  stride: number
  padValue: 0 | 1
}

/** Odd and even sizes, channel counts below, at and across word boundaries, both strides, both paddings. */
export const convCases: ConvCase[] = [
  { n: 1, h: 5, w: 5, cin: 3, cout: 2, k: 3, stride: 1, padValue: 0 },
  { n: 1, h: 5, w: 5, cin: 3, cout: 2, k: 3, stride: 1, padValue: 1 },
  { n: 2, h: 7, w: 6, cin: 33, cout: 5, k: 3, stride: 2, padValue: 0 },
  { n: 2, h: 7, w: 6, cin: 33, cout: 5, k: 3, stride: 2, padValue: 1 },
  { n: 1, h: 4, w: 4, cin: 64, cout: 7, k: 3, stride: 2, padValue: 1 },
  { n: 1, h: 3, w: 3, cin: 32, cout: 4, k: 3, stride: 1, padValue: 0 },
  { n: 2, h: 1, w: 1, cin: 70, cout: 3, k: 3, stride: 1, padValue: 0 },
  { n: 2, h: 1, w: 1, cin: 70, cout: 3, k: 3, stride: 1, padValue: 1 },
  { n: 2, h: 3, w: 5, cin: 40, cout: 6, k: 1, stride: 1, padValue: 0 },
]

export function randomCase(c: ConvCase, seed: number) {
  const rng = new Rng(seed)
  const x = Float32Array.from({ length: c.n * c.h * c.w * c.cin }, () => rng.next() * 2 - 1)
  // Exact zeros must count as +1 (sign(0) = +1).
  for (let i = 0; i < x.length; i += 17) x[i] = 0
  const kernel = Float32Array.from({ length: c.k * c.k * c.cin * c.cout }, () => rng.next() * 2 - 1)
  const shape = [c.k, c.k, c.cin, c.cout]
  const layer = binaryConvLayer(packSignStream(kernel, shape), shape, c.stride, c.padValue === 1)
  const expected = signConvReference(x, [c.n, c.h, c.w, c.cin], kernel, c.k, c.cout, c.stride, c.padValue)
  return { x, kernel, layer, expected, geometry: convGeometry(c.h, c.w, c.k, c.stride) }
}

describe('the packed binary convolution (JavaScript reference)', () => {
  it.each(convCases)('equals the ±1 convolution: %o', (c) => {
    const { x, layer, expected } = randomCase(c, 1 + c.cin + c.h)
    const bits = packActivations(x, c.n * c.h * c.w, c.cin, null, null)
    expect(Array.from(binaryConvJs(bits, c.n, c.h, c.w, layer, null))).toEqual(Array.from(expected))
  })

  it('0 and +1 padding differ only at the border', () => {
    const base = { n: 1, h: 6, w: 6, cin: 10, cout: 3, k: 3, stride: 1 }
    const zero = randomCase({ ...base, padValue: 0 }, 9)
    const one = randomCase({ ...base, padValue: 1 }, 9)
    const differs = (i: number) => zero.expected[i] !== one.expected[i]
    for (let y = 0; y < 6; y++)
      for (let x = 0; x < 6; x++)
        for (let o = 0; o < 3; o++) {
          const border = y === 0 || x === 0 || y === 5 || x === 5
          if (!border) expect(differs((y * 6 + x) * 3 + o)).toBe(false)
        }
    expect(Array.from({ length: zero.expected.length }, (_, i) => differs(i)).some(Boolean)).toBe(true)
  })

  it('packs scale·x + shift < 0 as 1, sign(0) as +1', () => {
    const x = new Float32Array([1, -1, 0, 2])
    const bits = packActivations(x, 1, 4, new Float32Array([1, 1, 1, -1]), new Float32Array([0, 0, 0, 1]))
    expect(bits[0]).toBe(0b1010)
  })
})
