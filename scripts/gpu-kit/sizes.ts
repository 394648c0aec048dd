/**
 * What the kit measures, at two sizes: the real run (a GPU machine, under 10 minutes in all) and the dry run
 * (`--dry`: the same parts at small sizes, to prove on a CPU machine that every part runs from the kit).
 */
import type { BenchDeployOptions } from '../../src/main/deploy/bench'

export interface KitSizes {
  /** `bench train`: the same widths, batch and input on tfjs-webgpu, the PyTorch engine and tfjs-wasm. */
  train: { widths: number[]; batch: number; input: number; channels: 1 | 3; steps: number; warmup: number }
  /** Timed and warm-up steps of `bench train` on tfjs-wasm, the CPU reference (seconds a step at width 0.5). */
  cpuSteps: { steps: number; warmup: number }
  /** Timed steps of `python -m r2b_torch bench-step` per width (it warms up on its own). */
  torchSteps: number
  deploy: BenchDeployOptions
  /** The tfjs-webgpu matmul of the adapter check: n×n×n, timed `rounds` times. */
  matmul: { n: number; rounds: number }
  /** `--set` overrides on the quick preset for the short quick-preset run of each engine. */
  quick: string[]
}

const STAGES = [0, 1, 2, 3]

/** The real sizes: `bench train`'s own (so the figures sit next to the CPU figures of `bench`). */
export const REAL: KitSizes = {
  train: { widths: [0.25, 0.5], batch: 32, input: 28, channels: 1, steps: 5, warmup: 2 },
  cpuSteps: { steps: 3, warmup: 1 },
  torchSteps: 10,
  // `bench deploy`'s defaults: ResNet-18's four stage shapes at 224 px, batch 1; the model at 32×32×3.
  deploy: {},
  matmul: { n: 2048, rounds: 10 },
  // The quick preset (width 0.125, batch 32, 100 steps an epoch, 1,000 test images), one epoch per stage.
  quick: STAGES.map((i) => `stages.${i}.epochs=1`),
}

/** The dry run: every part at small sizes (two widths still), a few minutes on a 2-core CPU with lavapipe. */
export const DRY: KitSizes = {
  train: { widths: [0.0625, 0.125], batch: 8, input: 16, channels: 1, steps: 2, warmup: 1 },
  cpuSteps: { steps: 2, warmup: 1 },
  torchSteps: 3,
  deploy: {
    convShapes: [
      [8, 64],
      [4, 128],
    ],
    modelInput: 16,
    rounds: 2,
  },
  matmul: { n: 256, rounds: 3 },
  quick: [
    ...STAGES.flatMap((i) => [
      `stages.${i}.epochs=1`,
      `stages.${i}.stepsPerEpoch=3`,
      `stages.${i}.batchSize=8`,
    ]),
    'data.testLimit=40',
    'eval.probes=2',
    'eval.gateSubset=8',
    'eval.batchSize=20',
  ],
}

/** `--widths a,b` and `--batch n` on top of either size. */
export function withOverrides(base: KitSizes, widths?: number[], batch?: number): KitSizes {
  return {
    ...base,
    train: { ...base.train, ...(widths?.length ? { widths } : {}), ...(batch ? { batch } : {}) },
  }
}

/**
 * The Fashion-MNIST subset the kit carries (images per class, from the bundled split): what the real quick
 * run reads (100 steps of 32 images an epoch, 1,000 test images), no more.
 */
export const KIT_DATA = { trainPerClass: 400, testPerClass: 100 }
