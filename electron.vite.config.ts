import { resolve } from 'node:path'
import { defineConfig } from 'electron-vite'
import react from '@vitejs/plugin-react'

const shared = { '@shared': resolve(__dirname, 'src/shared') }

export default defineConfig({
  main: {
    resolve: { alias: shared },
    build: {
      // Native and wasm-carrying packages (webgpu's Dawn addon, sharp, tfjs wasm binaries) stay in
      // node_modules and are loaded at run time; electron-vite externalizes dependencies by default.
      rollupOptions: {
        input: { index: resolve(__dirname, 'src/main/index.ts') },
      },
    },
  },
  preload: {
    resolve: { alias: shared },
    build: {
      // A sandboxed preload must be a single CommonJS file.
      rollupOptions: {
        input: { index: resolve(__dirname, 'src/preload/index.ts') },
        output: { format: 'cjs', entryFileNames: '[name].cjs' },
      },
    },
  },
  renderer: {
    resolve: { alias: shared },
    plugins: [react()],
  },
})
