import { z } from 'zod'

/** The tfjs backends a training worker can run on, fastest first on a machine with a GPU. */
export const backendNames = ['webgpu', 'wasm', 'cpu'] as const
export const BackendName = z.enum(backendNames)
export type BackendName = z.infer<typeof BackendName>

/** What the user asked for: a named backend, or automatic selection. */
export const BackendRequest = z.enum(['auto', ...backendNames])
export type BackendRequest = z.infer<typeof BackendRequest>

/** The WebGPU adapter Dawn offered, as reported by `GPUAdapter.info`. */
export const AdapterReport = z.object({
  vendor: z.string(),
  architecture: z.string(),
  device: z.string(),
  description: z.string(),
  /** A CPU implementation (llvmpipe/lavapipe, SwiftShader, WARP): WebGPU works but training is slow. */
  isSoftware: z.boolean(),
})
export type AdapterReport = z.infer<typeof AdapterReport>

/** Which backend the worker trains on, and why: shown in the UI's about panel and printed by the CLI. */
export const BackendReport = z.object({
  backend: BackendName,
  requested: BackendRequest,
  reason: z.string(),
  /** The adapter WebGPU would use, when one was found (also reported when another backend was chosen). */
  adapter: AdapterReport.nullable(),
  /** True when training on this backend is expected to be slow (software adapter or a CPU backend). */
  slow: z.boolean(),
  /** The wasm backend's SIMD support, when wasm is the backend. */
  wasmSimd: z.boolean().nullable(),
  tfjsVersion: z.string(),
})
export type BackendReport = z.infer<typeof BackendReport>

/** Whether the PyTorch engine (python/) can train here, on what, and if not why and how to enable it. */
export const TorchEngineReport = z.object({
  available: z.boolean(),
  /** Why it is not available, and what to do; null when it is. */
  reason: z.string().nullable(),
  python: z.string().nullable(),
  torch: z.string().nullable(),
  /** Devices it can train on, e.g. `cuda: NVIDIA H200`, `cpu: Intel Xeon`. */
  devices: z.array(z.string()),
  /** What `auto` picks: `cuda`, `mps` or `cpu`. */
  defaultDevice: z.string().nullable(),
})
export type TorchEngineReport = z.infer<typeof TorchEngineReport>
