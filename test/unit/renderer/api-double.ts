import {
  AblationListing,
  type AboutInfo,
  type NewRunRequest,
  type WorkbenchApi,
  type WorkbenchEvent,
} from '../../../src/shared/api'
import { encodeUint8 } from '../../../src/shared/binary'
import type { DatasetManifest } from '../../../src/shared/datasets'
import { makeRunConfig } from '../../../src/shared/run-config'
import type { RunMeta } from '../../../src/shared/runs'

export const about: AboutInfo = {
  appVersion: '0.1.0',
  versions: { electron: '45.5.0', node: '22.20.0' },
  dataHome: '/home/user/.local/share/r2b-workbench',
  backend: null,
  backendError: null,
  canPickFiles: false,
  torch: {
    available: false,
    reason:
      'the PyTorch engine is not available: no Python at "python3"; set it up with `bash scripts/setup-python.sh`',
    python: null,
    torch: null,
    devices: [],
    defaultDevice: null,
  },
}

export const dataset: DatasetManifest = {
  version: 1,
  id: 'tiny',
  name: 'Tiny',
  format: 'idx',
  source: { path: '/data/tiny', sha256: '0'.repeat(64), bytes: 100 },
  classes: ['a', 'b'],
  shape: [2, 2, 1],
  splits: { train: 4, test: 2 },
  classCounts: { train: [2, 2], test: [1, 1] },
  stats: { mean: [0.5], std: [0.25] },
  skipped: { count: 0, files: [] },
  createdAt: '2026-01-01T00:00:00.000Z',
}

export function runMeta(overrides: Partial<RunMeta> = {}): RunMeta {
  const config = makeRunConfig({ set: ['data.dataset=tiny', 'data.inputSize=2', 'data.classes=2'] })
  return {
    version: 2,
    id: 'run-1',
    name: 'r2b · quick · tiny',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    status: 'running',
    error: null,
    config,
    environment: {
      engine: 'tfjs',
      device: null,
      versions: { node: '22' },
      platform: 'linux',
      backend: null,
      distributed: null,
    },
    stages: config.stages.map((s) => ({
      name: s.name,
      status: 'pending',
      epochs: s.epochs,
      epochsCompleted: 0,
      testTop1: null,
      testTop5: null,
    })),
    ...overrides,
  }
}

/** The about of a machine where the PyTorch engine is set up (CPU only). */
export const aboutWithTorch: AboutInfo = {
  ...about,
  torch: {
    available: true,
    reason: null,
    python: '3.12.3',
    torch: '2.5.1',
    devices: ['cpu'],
    defaultDevice: 'cpu',
  },
}

export type ApiDouble = WorkbenchApi & {
  push(event: WorkbenchEvent): void
  calls: string[]
  /** Every request startRun was called with. */
  startRequests: NewRunRequest[]
}

/** A WorkbenchApi answering from memory, recording calls and letting the test push events. */
export function apiDouble(
  options: {
    datasets?: DatasetManifest[]
    runs?: RunMeta[]
    /** Runs of the listing that are attached (folders elsewhere). */
    attached?: string[]
    /** Run folders attachRun opens, by path; any other path is refused as the host refuses it. */
    folders?: Record<string, RunMeta>
    about?: AboutInfo
    /** What listAblations answers (checked against its schema, as the api client checks the host's). */
    ablations?: AblationListing
  } = {},
): ApiDouble {
  const listeners = new Set<(event: WorkbenchEvent) => void>()
  const calls: string[] = []
  const startRequests: NewRunRequest[] = []
  let datasets = options.datasets ?? []
  let runs = options.runs ?? []
  let attached = options.attached ?? []
  const record = (name: string) => calls.push(name)
  const unused = (name: string) => async (): Promise<never> => {
    record(name)
    throw new Error(`${name} is not part of this test`)
  }
  return {
    calls,
    startRequests,
    about: async () => (record('about'), options.about ?? about),
    listDatasets: async () => (record('listDatasets'), { datasets, problems: [] }),
    datasetSamples: async (id) => {
      record(`datasetSamples ${id}`)
      return {
        split: 'train',
        shape: [2, 2, 1],
        indices: [0, 1],
        labels: [0, 1],
        pixels: encodeUint8(new Uint8Array(8).fill(9)),
      }
    },
    readImages: unused('readImages'),
    importDataset: async (request) => (record(`importDataset ${request.path}`), { importId: 'imp-1' }),
    cancelImport: async (id) => (record(`cancelImport ${id}`), null),
    pickImportPath: async () => null,
    renameDataset: async (id, name) => {
      record(`renameDataset ${id} ${name}`)
      datasets = datasets.map((d) => (d.id === id ? { ...d, name } : d))
      return datasets.find((d) => d.id === id) as DatasetManifest
    },
    removeDataset: async (id) => {
      record(`removeDataset ${id}`)
      datasets = datasets.filter((d) => d.id !== id)
      return null
    },
    listRuns: async () => (record('listRuns'), { runs, problems: [], attached }),
    attachRun: async (folder) => {
      record(`attachRun ${folder}`)
      const run = options.folders?.[folder]
      if (!run) throw new Error(`${folder} is not a run folder a workbench wrote: no run.json there`)
      runs = [...runs.filter((r) => r.id !== run.id), run]
      attached = [...attached.filter((a) => a !== run.id), run.id]
      return run
    },
    runHistory: async (id) => {
      record(`runHistory ${id}`)
      const run = runs.find((r) => r.id === id)
      if (!run) throw new Error(`no run "${id}"`)
      return { run, log: [], snapshots: [] }
    },
    readSnapshot: unused('readSnapshot'),
    inspectImage: unused('inspectImage'),
    startRun: async (request) => {
      record('startRun')
      startRequests.push(request)
      const run = runMeta({ id: 'run-2', status: 'queued' })
      runs = [...runs, run]
      return run
    },
    pauseRun: async (id) => (record(`pauseRun ${id}`), null),
    resumeRun: async (id) => (record(`resumeRun ${id}`), null),
    stopRun: async (id) => (record(`stopRun ${id}`), null),
    removeRun: async (id) => {
      record(`removeRun ${id}`)
      runs = runs.filter((r) => r.id !== id)
      attached = attached.filter((a) => a !== id)
      return null
    },
    modelSummary: unused('modelSummary'),
    estimateRun: unused('estimateRun'),
    findImages: unused('findImages'),
    listAblations: async () => (
      record('listAblations'),
      AblationListing.parse(options.ablations ?? { groups: [], problems: [] })
    ),
    exportStage: async (runId, stage) => {
      record(`exportStage ${runId} ${stage}`)
      return {
        file: `/data/runs/${runId}/export/${stage}.r2bx`,
        fileBytes: 69_184,
        minimumBytes: 59_288,
        float32Bytes: 729_256,
        epochsCompleted: 2,
      }
    },
    onEvent: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
    push: (event) => listeners.forEach((l) => l(event)),
  }
}
