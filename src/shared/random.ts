/**
 * Small seeded random number generators. Everything that must replay exactly (hold-out splits, shuffling,
 * augmentation, mixup) draws from these, never from Math.random.
 */

/** A function returning uniform floats in [0, 1). */
export type Random = () => number

/** mulberry32: 32-bit state, fast, good enough statistical quality for shuffling and augmentation. */
export function mulberry32(seed: number): Random {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Mixes several integers into one 32-bit seed, so (seed, epoch, stream) give independent generators. */
export function mixSeed(...parts: number[]): number {
  let h = 0x811c9dc5
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x01000193)
    h ^= h >>> 13
    h = Math.imul(h, 0x5bd1e995)
    h ^= h >>> 15
  }
  return h >>> 0
}

/** An integer uniform in [0, n). */
export function randomInt(random: Random, n: number): number {
  return Math.floor(random() * n)
}

/** Fisher-Yates shuffle in place. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(
  array: T,
  random: Random,
): T {
  for (let i = array.length - 1; i > 0; i--) {
    const j = randomInt(random, i + 1)
    const tmp = array[i]
    array[i] = array[j]
    array[j] = tmp
  }
  return array
}

/** A permutation of 0..n-1. */
export function permutation(n: number, random: Random): Uint32Array {
  const out = new Uint32Array(n)
  for (let i = 0; i < n; i++) out[i] = i
  return shuffleInPlace(out, random)
}

/** A standard normal sample (Box-Muller). */
export function normal(random: Random): number {
  const u = 1 - random()
  const v = random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

/** A Gamma(shape, 1) sample (Marsaglia-Tsang; shape < 1 via the boost u^(1/shape)). */
export function gamma(random: Random, shape: number): number {
  if (shape < 1) return gamma(random, shape + 1) * Math.pow(1 - random(), 1 / shape)
  const d = shape - 1 / 3
  const c = 1 / Math.sqrt(9 * d)
  for (;;) {
    let x: number
    let v: number
    do {
      x = normal(random)
      v = 1 + c * x
    } while (v <= 0)
    v = v * v * v
    const u = 1 - random()
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v
  }
}

/** A Beta(a, b) sample: mixup's mixing coefficient. */
export function beta(random: Random, a: number, b: number): number {
  const x = gamma(random, a)
  const y = gamma(random, b)
  return x + y === 0 ? 0.5 : x / (x + y)
}

/** The same generator as an object, for code that draws several kinds of values from one stream. */
export class Rng {
  private readonly random: Random

  constructor(seed: number) {
    this.random = mulberry32(seed)
  }

  next(): number {
    return this.random()
  }

  int(n: number): number {
    return randomInt(this.random, n)
  }
}
