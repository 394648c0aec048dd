/**
 * `bench [target] [--json]`: the project's figures. Each area registers a target in `benchTargets`; without a
 * target every figure is measured in one run: dataset import, then on each available backend (wasm, webgpu)
 * the packed binary conv and model against tfjs's float ones and the export size, and the R2B training-step
 * ratio, with the backend and adapter they ran on.
 */
import type { CAC } from 'cac'
import { benchDatasets } from '../../datasets/bench'
import { benchDeploy } from '../../deploy/bench'
import { benchTrain, type BenchTrainOptions } from '../../engine/bench'
import { availableParallelism } from 'node:os'
import { benchTorchDdp, benchTorchStep, torchEngineInfo } from '../../training/torch-engine'
import { initBackend, releaseBackend } from '../../backend/backend'
import { CliError } from '../errors'

type Figures = Record<string, number | string>

/** Benchmarks by name; other areas add theirs here. Each returns its figures as a flat record. */
export const benchTargets: Record<string, () => Promise<Figures>> = {
  datasets: benchDatasets,
  // The backend R2B_BACKEND asks for (automatic by default), then step times of ResNet-18 vs each R2B stage,
  // then the same networks on the PyTorch engine and a plain PyTorch ResNet-18, with the ratios.
  train: async () => {
    await initBackend()
    return withTorch(await benchTrain(), {})
  },
  // Data-parallel scaling of the PyTorch engine here: 1 and 2 processes (torchrun) on one global batch.
  ddp: () => benchDdp({}),
  // Packed binary inference vs the float graph on the backend R2B_BACKEND asks for.
  deploy: async () => {
    await initBackend()
    return benchDeploy()
  },
}

const prefixed = (prefix: string, figures: Figures): Figures =>
  Object.fromEntries(Object.entries(figures).map(([k, v]) => [`${prefix}.${k}`, v]))

function errorText(error: unknown): string {
  return error instanceof Error ? error.message.split('\n')[0]! : String(error)
}

/**
 * The tfjs figures of `bench train` with the PyTorch engine's next to them, for the same widths, batch and
 * input: its step times, its real step against a plain PyTorch ResNet-18 (target ≤ 1.15), each stage against
 * its real step (target ≤ 1.4), and how many times faster than the tfjs engine it trains. Without the engine,
 * why it is missing, in one figure.
 */
async function withTorch(tfjs: Figures, options: BenchTrainOptions): Promise<Figures> {
  const torch = await torchEngineInfo()
  if (!torch.available) return { ...tfjs, torch_unavailable: torch.reason ?? 'unavailable' }
  const figures: Figures = {
    ...tfjs,
    torch_device: torch.defaultDevice ?? 'cpu',
    torch_version: torch.torch ?? '',
  }
  for (const width of options.widths ?? [0.25, 0.5]) {
    const result = await benchTorchStep({
      width,
      batch: options.batch ?? 32,
      input: options.input ?? 28,
      channels: options.channels ?? 1,
      steps: Math.max(5, options.steps ?? 10),
    })
    const ms = (kind: string) => result.timings[kind]?.medianMs ?? Number.NaN
    const w = `w${width}_`
    figures[`${w}torch_resnet18_step_ms`] = ms('teacher')
    figures[`${w}plain_pytorch_step_ms`] = ms('plain')
    figures[`${w}torch_vs_plain_ratio`] = result.ratios['teacher/plain'] ?? Number.NaN
    for (const stage of ['tanh', 'ban', 'bnn']) {
      figures[`${w}torch_${stage}_step_ms`] = ms(stage)
      figures[`${w}torch_${stage}_ratio`] = result.ratios[`${stage}/teacher`] ?? Number.NaN
    }
    const tfjsMs = tfjs[`${w}resnet18_step_ms`]
    if (typeof tfjsMs === 'number')
      figures[`${w}tfjs_over_torch_speedup`] = Number((tfjsMs / ms('teacher')).toFixed(2))
  }
  return figures
}

/**
 * Images per second of the PyTorch engine's binary-stage training steps in 1 and 2 processes (DDP under
 * torchrun: gloo on the CPU, NCCL on GPUs) on the same global batch, and the scaling efficiency at 2. On a CPU
 * the processes share the cores, so the figure says what the communication and the split cost, not more
 * compute.
 */
async function benchDdp(options: { width?: number; batch?: number; steps?: number }): Promise<Figures> {
  const torch = await torchEngineInfo()
  if (!torch.available) return { ddp_unavailable: torch.reason ?? 'unavailable' }
  const gpus = torch.devices.filter((d) => d.startsWith('cuda:')).length
  const most = torch.defaultDevice === 'cuda' ? gpus : availableParallelism()
  const processes = most >= 4 ? [1, 2, 4] : [1, 2]
  const result = await benchTorchDdp({
    processes,
    width: options.width ?? 0.25,
    batch: options.batch ?? 64,
    steps: options.steps ?? 10,
  })
  const figures: Figures = {
    ddp_device: result.device,
    ddp_backend: result.backend,
    ddp_stage: result.stage,
    ddp_global_batch: result.batch,
    ddp_cpu_cores: availableParallelism(),
  }
  for (const run of result.runs) {
    figures[`ddp_${run.processes}proc_images_per_s`] = Number(run.imagesPerSecond.toFixed(1))
    figures[`ddp_${run.processes}proc_step_ms`] = Number(run.medianMs.toFixed(1))
    if (run.efficiency !== null) figures[`ddp_${run.processes}proc_efficiency`] = run.efficiency
  }
  return figures
}

/** `--quick`: every figure at small sizes, in about a minute; the figures show that each part runs, no more. */
const QUICK = {
  datasets: { scale: 0.02 },
  deploy: {
    convShapes: [
      [8, 64],
      [4, 128],
    ] as [number, number][],
    modelInput: 16,
    rounds: 2,
  },
  train: { widths: [0.0625], batch: 8, input: 16, steps: 2, warmup: 1 },
  ddp: { width: 0.0625, batch: 8, steps: 2 },
}

/** Every figure, side by side per backend; the headline keys come from the backend training would pick. */
export async function benchAll(
  say: (line: string) => void = () => undefined,
  { quick = false } = {},
): Promise<Figures> {
  const figures: Figures = {}
  say('bench: datasets')
  Object.assign(figures, prefixed('datasets', await benchDatasets(quick ? QUICK.datasets : {})))
  // The datasets bench reads batches on the cpu backend; each backend below starts afresh.
  releaseBackend()
  const perBackend: Record<string, Figures> = {}
  let adapter = 'none'
  let hardwareGpu = false
  for (const backend of ['wasm', 'webgpu'] as const) {
    say(`bench: packed inference on ${backend}`)
    try {
      const report = await initBackend(backend)
      if (report.adapter) {
        adapter = report.adapter.description || `${report.adapter.vendor} ${report.adapter.device}`.trim()
        hardwareGpu = !report.adapter.isSoftware
      }
      perBackend[backend] = await benchDeploy(quick ? QUICK.deploy : {})
      if (backend === 'wasm') {
        say('bench: training steps on wasm, then on the PyTorch engine')
        const options = quick ? QUICK.train : {}
        Object.assign(figures, prefixed('train', await withTorch(await benchTrain(options), options)))
      }
    } catch (error) {
      figures[`${backend}.unavailable`] = errorText(error)
    } finally {
      releaseBackend()
    }
  }
  say('bench: data-parallel scaling on the PyTorch engine (1 and 2 processes)')
  try {
    Object.assign(figures, prefixed('train', await benchDdp(quick ? QUICK.ddp : {})))
  } catch (error) {
    figures['train.ddp_unavailable'] = errorText(error)
  }
  const primary = hardwareGpu && perBackend.webgpu ? 'webgpu' : 'wasm'
  const head = perBackend[primary] ?? {}
  // The largest R2B-step / real-step ratio over the stages and widths measured.
  const trainRatios = Object.entries(figures)
    .filter(([key]) => key.startsWith('train.') && key.endsWith('_max_ratio'))
    .map(([, value]) => value as number)
  const headline: Figures = {
    backend: primary,
    adapter,
    binaryConvSpeedup: head.binaryConvSpeedup ?? 'n/a',
    // On the CPU: the speed-up this CPU's XOR-popcount throughput allows at most.
    ...(head.binaryConvBound === undefined ? {} : { binaryConvBound: head.binaryConvBound }),
    modelSpeedup: head.modelSpeedup ?? 'n/a',
    exportBytes: head.exportBytes ?? 'n/a',
    float32Bytes: head.float32Bytes ?? 'n/a',
    trainStepRatio: trainRatios.length ? Math.max(...trainRatios) : 'n/a',
  }
  for (const [backend, f] of Object.entries(perBackend)) Object.assign(figures, prefixed(backend, f))
  return { ...headline, ...figures }
}

export function registerBench(cli: CAC): void {
  cli
    .command(
      'bench [target]',
      `Print benchmark figures: all of them, or one target (${Object.keys(benchTargets).join(', ')})`,
    )
    .option('--json', 'Print the figures as JSON')
    .option('--quick', 'Every figure at small sizes (about a minute): checks that each part runs')
    .action(async (target: string | undefined, flags: { json?: boolean; quick?: boolean }) => {
      let figures: Figures
      if (target === undefined) {
        figures = await benchAll((line) => process.stderr.write(`${line}\n`), { quick: flags.quick })
      } else {
        if (flags.quick) throw new CliError('bench: --quick applies to the whole bench, without a target')
        const run = benchTargets[target]
        if (!run)
          throw new CliError(`bench ${target}: unknown target (use ${Object.keys(benchTargets).join(', ')})`)
        figures = await run()
        releaseBackend()
      }
      if (flags.json) process.stdout.write(`${JSON.stringify(figures)}\n`)
      else for (const [key, value] of Object.entries(figures)) process.stdout.write(`${key}: ${value}\n`)
    })
}
