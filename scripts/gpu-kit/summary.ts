/** The human-readable summary of a kit run (summary.md): the same figures as results.json, as tables. */
import type { KitResults } from './orchestrate'

type Value = number | string | undefined

const show = (value: Value, unit = ''): string =>
  value === undefined || (typeof value === 'number' && !Number.isFinite(value)) ? '–' : `${value}${unit}`

function table(head: string[], rows: Value[][]): string {
  const line = (cells: Value[]) => `| ${cells.map((cell) => show(cell)).join(' | ')} |`
  return [line(head), `|${head.map(() => '---').join('|')}|`, ...rows.map(line)].join('\n')
}

/** `part.what → path` as one line per path, naming what it is once (node, bundle, …) and the parts using it. */
function uniqueByPath(entries: Record<string, string>): [string, string][] {
  const byPath = new Map<string, Set<string>>()
  for (const [key, path] of Object.entries(entries)) {
    const what = key.slice(key.indexOf('.') + 1)
    byPath.set(path, (byPath.get(path) ?? new Set()).add(what))
  }
  return [...byPath].map(([path, whats]) => [[...whats].join(', '), path])
}

export function summary(results: KitResults): string {
  const parts = results.parts
  const fig = (part: string, key: string): Value => parts[part]?.figures[key]
  const { train } = results.sizes
  const out: string[] = []
  const okCount = Object.values(parts).filter((part) => part.ok).length
  out.push(
    `# R2B Workbench GPU kit: ${results.mode} run`,
    '',
    `Started ${results.startedAt}; ${results.seconds} s of a ${results.budgetS} s budget; ` +
      `${okCount} of ${Object.keys(parts).length} parts ran without error.` +
      (results.missing.length ? ` Missing figures: ${results.missing.length}.` : ' Every figure is there.'),
    '',
    `- Machine: ${show(fig('environment', 'cpu'))}, ${show(fig('environment', 'cores'))} cores, ` +
      `${show(fig('environment', 'memoryGiB'))} GiB; glibc ${show(fig('environment', 'glibc'))}; ` +
      `GPU (nvidia-smi): ${show(fig('environment', 'nvidiaSmi'))}`,
    `- WebGPU adapter: ${show(fig('adapter', 'description'))} (vendor ${show(fig('adapter', 'vendor'))}, ` +
      `architecture ${show(fig('adapter', 'architecture'))}, software: ${show(fig('adapter', 'isSoftware'))}); ` +
      `matmul ${show(fig('adapter', 'matmul'))}: ${show(fig('adapter', 'matmul_gflops'))} GFLOP/s`,
    `- Vulkan loader: ${show(fig('adapter', 'vulkanLoader'))}; driver: ${show(fig('adapter', 'vulkanDriver'))}; ` +
      `taken from the kit: ${show(fig('environment', 'vulkanLibsFromKit'))}`,
    `- PyTorch engine: torch ${show(fig('torch-info', 'torch'))}, CUDA ${show(fig('torch-info', 'cuda'))}, ` +
      `device ${show(fig('train-torch', 'device') ?? fig('torch-info', 'defaultDevice'))} ` +
      `(${show(fig('torch-info', 'gpu'))}); Python ${show(fig('torch-info', 'python'))}`,
    `- Kit: ${show(results.kit.sizeMiB as Value)} MiB, built ${show(results.kit.built as Value)} ` +
      `from ${show(results.kit.commit as Value)}`,
    '',
    `## \`bench train\`: median training-step time in ms (batch ${train.batch}, input ` +
      `${train.input}×${train.input}×${train.channels}, synthetic data)`,
    '',
  )
  const rows: Value[][] = []
  for (const w of train.widths) {
    const k = `w${w}_`
    const net = (name: string, tfjs: string, torch: string) => [
      w,
      name,
      fig('train-webgpu', `${k}${tfjs}`),
      fig('train-torch', `${k}${torch}`),
      fig('train-wasm', `${k}${tfjs}`),
    ]
    rows.push(net('ResNet-18 (real teacher)', 'resnet18_step_ms', 'torch_resnet18_step_ms'))
    for (const stage of ['tanh', 'ban', 'bnn'])
      rows.push(net(`R2B stage ${stage}`, `${stage}_step_ms`, `torch_${stage}_step_ms`))
    rows.push([
      w,
      'plain PyTorch ResNet-18',
      undefined,
      fig('train-torch', `${k}plain_pytorch_step_ms`),
      undefined,
    ])
    rows.push([
      w,
      'PyTorch faster than tfjs-webgpu (real step)',
      undefined,
      results.comparison[`${k}torch_speedup_over_webgpu`],
      undefined,
    ])
    rows.push([
      w,
      'tfjs-webgpu faster than tfjs-wasm (real step)',
      results.comparison[`${k}webgpu_speedup_over_wasm`],
      undefined,
      undefined,
    ])
  }
  out.push(
    table(
      [
        'width',
        'network',
        'tfjs-webgpu',
        `PyTorch (${show(fig('train-torch', 'device'))})`,
        'tfjs-wasm (CPU)',
      ],
      rows,
    ),
    '',
  )

  const deploy = results.sizes.deploy.convShapes ?? [
    [56, 64],
    [28, 128],
    [14, 256],
    [7, 512],
  ]
  out.push('## Packed binary conv (XNOR-popcount, WGSL) against tfjs float conv2d on WebGPU, batch 1, ms', '')
  const convRows: Value[][] = deploy.map(([size, c]) => {
    const k = `conv_${size}x${size}x${c}_`
    return [
      `3×3 conv ${size}×${size}×${c}`,
      fig('deploy-webgpu', `${k}packed_ms`),
      fig('deploy-webgpu', `${k}float_ms`),
      fig('deploy-webgpu', `${k}speedup`),
    ]
  })
  convRows.push(['geometric mean', undefined, undefined, fig('deploy-webgpu', 'binaryConvSpeedup')])
  convRows.push([
    show(fig('deploy-webgpu', 'model')),
    fig('deploy-webgpu', 'model_packed_ms'),
    fig('deploy-webgpu', 'model_float_ms'),
    fig('deploy-webgpu', 'modelSpeedup'),
  ])
  out.push(table(['what', 'packed', 'float', 'speed-up'], convRows), '')
  out.push(
    `On this machine's CPU (tfjs-wasm, WebAssembly SIMD kernels): packed conv speed-up ` +
      `${show(fig('deploy-wasm', 'binaryConvSpeedup'))} (the CPU's popcount bound allows ` +
      `${show(fig('deploy-wasm', 'binaryConvBound'))}), model ${show(fig('deploy-wasm', 'modelSpeedup'))}.`,
    '',
  )
  out.push(
    `Export: ${show(fig('deploy-webgpu', 'exportBytes'))} bytes packed against ` +
      `${show(fig('deploy-webgpu', 'float32Bytes'))} bytes of float32 weights.`,
    '',
  )

  out.push('## A short quick-preset run (R2B chain on the kit’s Fashion-MNIST subset)', '')
  const quickRows: Value[][] = ['teacher', 'tanh', 'ban', 'bnn'].map((stage) => [
    stage,
    fig('quick-tfjs', `${stage}_s`),
    fig('quick-tfjs', `${stage}_images_per_s`),
    fig('quick-tfjs', `${stage}_test_top1`),
    fig('quick-torch', `${stage}_s`),
    fig('quick-torch', `${stage}_images_per_s`),
    fig('quick-torch', `${stage}_test_top1`),
  ])
  quickRows.push([
    'whole run (wall)',
    fig('quick-tfjs', 'wall_s'),
    undefined,
    fig('quick-tfjs', 'status'),
    fig('quick-torch', 'wall_s'),
    undefined,
    fig('quick-torch', 'status'),
  ])
  out.push(
    table(
      ['stage', 'tfjs-webgpu s', 'images/s', 'test top-1', 'PyTorch s', 'images/s', 'test top-1'],
      quickRows,
    ),
    '',
  )

  out.push('## Parts', '')
  out.push(
    table(
      ['part', 'result', 'seconds', 'log'],
      Object.entries(parts).map(([name, part]) => [
        name,
        part.ok ? 'ok' : `error: ${part.error}`,
        part.seconds,
        part.log || undefined,
      ]),
    ),
    '',
  )
  const { provenance } = results
  out.push(
    '## Where everything came from',
    '',
    `Kit folder: ${provenance.kitDir}; unpacked into: ${provenance.workDir}.`,
    '',
    ...uniqueByPath(provenance.fromKit).map(([what, path]) => `- from the kit: ${what}: ${path}`),
    ...Object.entries(provenance.fromMachine).map(([what, path]) => `- from the machine: ${what}: ${path}`),
    provenance.outsideKit.length
      ? `- **not from the kit, though it should be**: ${provenance.outsideKit.join('; ')}`
      : '- Nothing that should come from the kit came from elsewhere.',
    '',
  )
  if (results.missing.length) out.push('## Missing figures', '', ...results.missing.map((m) => `- ${m}`), '')
  return `${out.join('\n')}\n`
}
