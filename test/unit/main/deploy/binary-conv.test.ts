import { describe, expect, it } from 'vitest'
import { binaryConvJs, packActivations } from '../../../../src/main/deploy/binary-conv'
import { convCases, randomCase } from './support'

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
