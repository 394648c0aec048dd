/** A small seeded generator (mulberry32): deterministic shuffles, augmentation draws and probe choices. */
export class Rng {
  private state: number

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  int(maxExclusive: number): number {
    return Math.floor(this.next() * maxExclusive)
  }

  normal(): number {
    const u = 1 - this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next())
  }

  /** Gamma(shape, 1) by Marsaglia–Tsang (boosted below shape 1). */
  gamma(shape: number): number {
    if (shape < 1) return this.gamma(shape + 1) * this.next() ** (1 / shape)
    const d = shape - 1 / 3
    const c = 1 / Math.sqrt(9 * d)
    for (;;) {
      const x = this.normal()
      const v = (1 + c * x) ** 3
      if (v <= 0) continue
      const u = this.next()
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v
    }
  }

  beta(a: number, b: number): number {
    const x = this.gamma(a)
    return x / (x + this.gamma(b))
  }

  shuffle(n: number): Int32Array {
    const order = new Int32Array(n)
    for (let i = 0; i < n; i++) order[i] = i
    for (let i = n - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = order[i] as number
      order[i] = order[j] as number
      order[j] = tmp
    }
    return order
  }
}

/** Mixes integers into one 32-bit seed. */
export function mixSeed(...parts: number[]): number {
  let h = 0x2545f491
  for (const p of parts) {
    h ^= Math.imul(((p | 0) ^ (p / 4294967296)) | 0, 0x9e3779b1) + 0x7f4a7c15
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
    h ^= h >>> 16
  }
  return h >>> 0
}
