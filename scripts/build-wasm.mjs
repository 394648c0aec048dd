#!/usr/bin/env node
// Builds the CPU binary-convolution kernel (WebAssembly SIMD) from its WAT source with wabt from npm:
//   node scripts/build-wasm.mjs [out file]   (default out/wasm/binary-conv.wasm)
// The runtime loads it when R2B_DEPLOY_WASM names it; without that it compiles the source at first use.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import initWabt from 'wabt'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const source = resolve(root, 'src/main/deploy/wasm/binary-conv.wat')
const target = resolve(process.argv[2] ?? resolve(root, 'out/wasm/binary-conv.wasm'))
const wabt = await initWabt()
const module = wabt.parseWat(source, await readFile(source, 'utf8'), { simd: true })
module.validate()
const { buffer } = module.toBinary({})
module.destroy()
await WebAssembly.compile(buffer)
await mkdir(dirname(target), { recursive: true })
await writeFile(`${target}.tmp`, buffer)
await rename(`${target}.tmp`, target)
process.stdout.write(`${target}: ${buffer.length} bytes\n`)
