/**
 * The GPU kit end to end (docs/gpu-kit.md): `npm run gpu-kit` builds the folder, then the folder's own run.sh
 * runs the dry run from it, outside this repository, with a clean environment (PATH without node_modules/.bin,
 * no NODE_PATH, HOME and TMPDIR in a temporary folder, PYTHONPATH unset, cwd in the kit). It asserts:
 *   1. the folder is at most 60 MiB;
 *   2. the dry run produces every figure (`missing` is empty) and no part reports an error;
 *   3. nothing came from outside the kit: Node, the bundle, the webgpu module and its Dawn addon, the wasm
 *      kernels, the dataset and the engine's Python package all lie in the kit or the folder it unpacked
 *      into, as the kit reports them itself (process.execPath, module paths, /proc/self/maps,
 *      r2b_torch.__file__), and no file mapped into any of its Node processes lies in this repository.
 * What the kit takes from the machine: Python with torch and numpy (the repository's .venv stands in for it),
 * the Vulkan driver (lavapipe here; the kit's own loader is forced so that it is tested too) and the C library.
 * Building takes a minute or two the first time (download and compression, cached in node_modules/.cache),
 * the dry run about four minutes on 2 loaded cores.
 */
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import type { KitResults } from '../../scripts/gpu-kit/orchestrate'

const root = realpathSync(join(import.meta.dirname, '../..'))
const lavapipe = '/usr/share/vulkan/icd.d/lvp_icd.json'
const venv = join(root, '.venv')
const python = existsSync(venv) ? join(realpathSync(venv), 'bin', 'python') : ''
const run = promisify(execFile)

function torchThere(): boolean {
  if (!python || !existsSync(python)) return false
  try {
    return readdirSync(join(realpathSync(venv), 'lib')).some((lib) =>
      existsSync(join(realpathSync(venv), 'lib', lib, 'site-packages', 'torch')),
    )
  } catch {
    return false
  }
}

// The kit is built for x86-64 Linux; there, what it takes from the machine must be present (npm test installs
// both), so a missing piece fails the test instead of skipping it.
const canRun = process.platform === 'linux' && process.arch === 'x64'

function folderBytes(dir: string): number {
  return readdirSync(dir, { withFileTypes: true }).reduce((sum, entry) => {
    const path = join(dir, entry.name)
    return sum + (entry.isDirectory() ? folderBytes(path) : statSync(path).size)
  }, 0)
}

const inside = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`)

describe.skipIf(!canRun)('npm run gpu-kit, then the kit’s run.sh --dry from the built folder', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'r2b-gpu-kit-test-'))
  const kit = join(scratch, 'gpu-kit')
  /** The machine as the kit sees it: nothing of this repository on any path. */
  const cleanEnv = (extra: Record<string, string> = {}) => ({
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: join(scratch, 'home'),
    TMPDIR: scratch,
    LANG: 'C.UTF-8',
    R2B_PYTHON: python,
    VK_ICD_FILENAMES: lavapipe,
    R2B_KIT_VULKAN_LOADER: 'kit',
    ...extra,
  })
  let results: KitResults
  let dryRunSeconds = 0

  beforeAll(async () => {
    expect(existsSync(lavapipe), `${lavapipe} (scripts/setup.sh installs it)`).toBe(true)
    expect(torchThere(), '.venv with torch (scripts/setup-python.sh makes it)').toBe(true)
    await run(process.execPath, ['--import', 'tsx', 'scripts/gpu-kit/build.ts', '--out', kit], {
      cwd: root,
      timeout: 400_000,
    })
    const started = Date.now()
    const out = join(scratch, 'dry')
    await run('bash', [join(kit, 'run.sh'), '--dry', '--out', out], {
      cwd: kit,
      env: cleanEnv(),
      timeout: 700_000,
      maxBuffer: 16 * 2 ** 20,
    })
    dryRunSeconds = (Date.now() - started) / 1000
    results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as KitResults
    expect(readFileSync(join(out, 'summary.md'), 'utf8')).toMatch(/^# R2B Workbench GPU kit: dry run/)
  }, 1_200_000)

  it('is one folder of at most 60 MiB, with what a bare machine needs', () => {
    const bytes = folderBytes(kit)
    expect(bytes).toBeLessThanOrEqual(60 * 2 ** 20)
    for (const path of [
      'run.sh',
      'README.md',
      'kit.json',
      'app/r2b-kit.mjs',
      'app/node_modules/webgpu/index.js',
      'app/wasm/tfjs-backend-wasm-simd.wasm',
      'app/wasm/binary-conv.wasm',
      'python/src/r2b_torch/__main__.py',
      'data/fashion-mnist-subset/train-images-idx3-ubyte.gz',
    ])
      expect(existsSync(join(kit, path)), path).toBe(true)
    expect(readdirSync(join(kit, 'runtime')).sort()).toEqual([
      expect.stringMatching(/^dawn\.node\.(xz|gz)$/),
      expect.stringMatching(/^node\.(xz|gz)$/),
    ])
    // Only the linux-x64 addon travels, compressed; nothing else native but the fallback loader libraries.
    expect(existsSync(join(kit, 'app/node_modules/webgpu/dist'))).toBe(false)
    console.info(`gpu kit: ${(bytes / 2 ** 20).toFixed(1)} MiB; dry run ${dryRunSeconds.toFixed(0)} s`)
  })

  it('the dry run produces every figure, and no part reports an error', () => {
    expect(results.mode).toBe('dry')
    for (const [name, part] of Object.entries(results.parts)) expect(part.error, name).toBeNull()
    expect(results.missing).toEqual([])
    expect(Object.keys(results.parts)).toEqual([
      'environment',
      'adapter',
      'torch-info',
      'train-webgpu',
      'train-torch',
      'deploy-webgpu',
      'quick-tfjs',
      'quick-torch',
      'train-wasm',
      'deploy-wasm',
    ])
    const f = (part: string, key: string) => results.parts[part]!.figures[key]
    expect(f('adapter', 'description')).toMatch(/llvmpipe/)
    expect(f('train-webgpu', 'backend')).toBe('webgpu')
    expect(f('train-wasm', 'backend')).toBe('wasm')
    expect(f('deploy-webgpu', 'kernels')).toBe('webgpu')
    expect(f('deploy-wasm', 'kernels')).toMatch(/^wasm /)
    expect(f('train-torch', 'device')).toBe('cpu')
    for (const w of results.sizes.train.widths) {
      expect(f('train-webgpu', `w${w}_resnet18_step_ms`)).toBeGreaterThan(0)
      expect(f('train-torch', `w${w}_torch_resnet18_step_ms`)).toBeGreaterThan(0)
      expect(results.comparison[`w${w}_torch_speedup_over_webgpu`]).toBeGreaterThan(0)
    }
    expect(f('deploy-webgpu', 'binaryConvSpeedup')).toBeGreaterThan(0)
    // The quick preset ran its four stages on each engine, through the workbench's trainer and run folder.
    for (const engine of ['tfjs', 'torch']) {
      expect(f(`quick-${engine}`, 'status')).toBe('finished')
      expect(f(`quick-${engine}`, 'stages')).toBe('teacher tanh ban bnn')
    }
    expect(String(f('quick-tfjs', 'device'))).toMatch(/^webgpu/)
    expect(String(f('quick-torch', 'device'))).toMatch(/^cpu/)
  })

  it('took nothing it needs from outside the kit (by the paths the kit reports itself)', () => {
    const { kitDir, workDir, fromKit, fromMachine, outsideKit } = results.provenance
    expect(kitDir).toBe(realpathSync(kit))
    expect(inside(workDir, realpathSync(scratch))).toBe(true)
    expect(outsideKit).toEqual([])
    const from = (what: string) => Object.entries(fromKit).filter(([key]) => key.endsWith(`.${what}`))
    // Every Node process of the kit ran the kit's Node and bundle, never the machine's or this repository's.
    for (const what of ['node', 'bundle']) {
      expect(from(what)).toHaveLength(Object.keys(results.parts).length)
      for (const [key, path] of from(what)) expect(inside(path, workDir), key).toBe(true)
    }
    for (const what of ['webgpuModule', 'dawnAddon', 'wasmBinaries', 'deployWasm']) {
      expect(from(what).length, what).toBeGreaterThan(0)
      for (const [key, path] of from(what)) expect(inside(path, workDir), key).toBe(true)
    }
    for (const what of ['dataset', 'r2bTorch', 'enginePackageSource']) {
      expect(from(what).length, what).toBeGreaterThan(0)
      for (const [key, path] of from(what)) expect(inside(path, kitDir), key).toBe(true)
    }
    // The kit's Vulkan loader, forced here (the machine has one too), drove the machine's lavapipe.
    expect(fromKit['adapter.vulkanLoader']).toBe(join(kitDir, 'lib/fallback/libvulkan.so.1'))
    expect(fromMachine.vulkanDriver).toMatch(/libvulkan_lvp\.so$/)
    // No file mapped into any of the kit's Node processes lies in this repository.
    const mapped = Object.values(results.parts).flatMap((part) => part.machineFiles)
    expect(mapped.length).toBeGreaterThan(0)
    expect(mapped.filter((path) => inside(path, root))).toEqual([])
    // Python and torch are the machine's (here the .venv, standing in for it); the engine's package is not.
    expect(fromMachine.python).toBe(python)
  })

  it('never fails as a whole: a part that cannot run reports its own error', async () => {
    const out = join(scratch, 'no-python')
    const { stdout } = await run(
      'bash',
      [join(kit, 'run.sh'), '--dry', '--out', out, '--only', 'environment,torch-info,train-torch'],
      { cwd: kit, env: cleanEnv({ R2B_PYTHON: join(scratch, 'no-such-python') }), timeout: 120_000 },
    )
    expect(stdout).toMatch(/parts with errors: torch-info, train-torch/)
    const failed = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as KitResults
    expect(failed.parts.environment!.error).toBeNull()
    for (const name of ['torch-info', 'train-torch'])
      expect(failed.parts[name]!.error, name).toMatch(/no Python at ".*no-such-python"/)
    expect(failed.missing).toContain('train-torch: w0.0625_torch_resnet18_step_ms')
  })
})
