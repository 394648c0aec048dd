// Builds the CPU binary-convolution kernel (WebAssembly SIMD) from its WAT source with wabt from npm:
//   npm run build:wasm [-- out file]   (default out/wasm/binary-conv.wasm)
// The runtime loads it when R2B_DEPLOY_WASM names it; without that it compiles the source at first use.
import { mkdir, rename, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { buildBinaryConvWasm } from '../src/main/deploy/kernels-wasm'

const target = resolve(process.argv[2] ?? resolve(import.meta.dirname, '../out/wasm/binary-conv.wasm'))
const bytes = await buildBinaryConvWasm()
await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>)
await mkdir(dirname(target), { recursive: true })
await writeFile(`${target}.tmp`, bytes)
await rename(`${target}.tmp`, target)
process.stdout.write(`${target}: ${bytes.length} bytes\n`)
