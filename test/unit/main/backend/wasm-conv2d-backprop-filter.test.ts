import * as tf from '@tensorflow/tfjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { initBackend } from '../../../../src/main/backend/backend'

type Pad = 'same' | 'valid' | [[number, number], [number, number], [number, number], [number, number]]

// The filter gradient of conv2d, through tf.grad: exactly what training calls.
function filterGradient(x: tf.Tensor4D, w: tf.Tensor4D, dy: tf.Tensor4D, stride: number, pad: Pad) {
  return tf.grad((filter) => tf.sum(tf.mul(tf.conv2d(x, filter as tf.Tensor4D, stride, pad), dy)))(w)
}

async function onBackend(name: string, f: () => tf.Tensor): Promise<Float32Array> {
  await tf.setBackend(name)
  const t = f()
  const values = (await t.data()) as Float32Array
  t.dispose()
  return values
}

const cases: Array<{ kernel: number; stride: number; pad: Pad; h: number; w: number }> = []
for (const kernel of [1, 3, 7])
  for (const stride of [1, 2])
    for (const pad of ['same', 'valid'] as const) cases.push({ kernel, stride, pad, h: 13, w: 11 })
cases.push({
  kernel: 3,
  stride: 2,
  pad: [
    [0, 0],
    [1, 2],
    [2, 1],
    [0, 0],
  ],
  h: 9,
  w: 10,
})
cases.push({ kernel: 7, stride: 2, pad: 'same', h: 16, w: 16 }) // an ImageNet-style stem, even size

describe('wasm Conv2DBackpropFilter', () => {
  beforeAll(async () => {
    const report = await initBackend('wasm')
    expect(report.backend).toBe('wasm')
  })

  it('is registered on the wasm backend', () => {
    expect(tf.getKernel('Conv2DBackpropFilter', 'wasm')).toBeDefined()
  })

  it.each(cases)(
    'matches the cpu backend: $kernel×$kernel kernel, stride $stride, padding $pad, $h×$w input',
    async (c) => {
      const batch = 3
      const inC = 5
      const outC = 4
      const xShape: [number, number, number, number] = [batch, c.h, c.w, inC]
      const wShape: [number, number, number, number] = [c.kernel, c.kernel, inC, outC]
      const outShape = tf.backend_util.computeConv2DInfo(xShape, wShape, c.stride, 1, c.pad).outShape
      const make = () => ({
        x: tf.randomNormal(xShape, 0, 1, 'float32', 1) as tf.Tensor4D,
        w: tf.randomNormal(wShape, 0, 1, 'float32', 2) as tf.Tensor4D,
        dy: tf.randomNormal(outShape, 0, 1, 'float32', 3) as tf.Tensor4D,
      })
      const run = () =>
        tf.tidy(() => {
          const { x, w, dy } = make()
          return filterGradient(x, w, dy, c.stride, c.pad)
        })
      const expected = await onBackend('cpu', run)
      const actual = await onBackend('wasm', run)
      expect(actual.length).toBe(c.kernel * c.kernel * inC * outC)
      const scale = Math.max(...expected.map(Math.abs))
      expect(scale).toBeGreaterThan(0)
      // float32 sums of up to 3·13·11 products, in different orders: agree to 1e-5 of the largest value.
      for (let i = 0; i < expected.length; i++)
        expect(Math.abs(actual[i]! - expected[i]!)).toBeLessThan(1e-5 * scale)
    },
  )

  it('leaves no tensors behind', async () => {
    await tf.setBackend('wasm')
    const before = tf.memory().numTensors
    const x = tf.randomNormal([2, 8, 8, 3]) as tf.Tensor4D
    const w = tf.randomNormal([3, 3, 3, 4]) as tf.Tensor4D
    const dy = tf.randomNormal([2, 4, 4, 4]) as tf.Tensor4D
    const g = filterGradient(x, w, dy, 2, 'same')
    tf.dispose([x, w, dy, g])
    expect(tf.memory().numTensors).toBe(before)
  })
})
