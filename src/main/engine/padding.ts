/** TensorFlow's 'same' padding: the output is ceil(in / stride), the extra pixel (if any) goes after. */
export function samePadding(size: number, kernel: number, stride: number): [number, number] {
  const out = Math.ceil(size / stride)
  const total = Math.max((out - 1) * stride + kernel - size, 0)
  const before = Math.floor(total / 2)
  return [before, total - before]
}
