import { createStore, type StoreApi } from 'zustand/vanilla'
import type { AblationSummary } from '../../../shared/ablation'
import type {
  AblationListing,
  ExportSummary,
  AboutInfo,
  DatasetListing,
  ImageBatch,
  ImportRequest,
  InspectRequest,
  Inspection,
  ModelSummary,
  NewRunRequest,
  RunEstimate,
  RunHistory,
  WorkbenchApi,
  WorkbenchEvent,
} from '../../../shared/api'
import type { DatasetManifest, ImportProgress } from '../../../shared/datasets'
import type { RunConfig } from '../../../shared/run-config'
import type { LogLine, RunMeta, SnapshotIndexEntry } from '../../../shared/runs'
import { decodeSnapshotData } from '../../../shared/snapshot-wire'
import type { SnapshotRecord } from '../../../shared/snapshots'

/** Which snapshot: what the UI lists, chooses and asks for. */
export type SnapshotRef = Pick<SnapshotIndexEntry, 'kind' | 'stage' | 'epochsCompleted'>

const sameSnapshot = (a: SnapshotRef, b: SnapshotRef) =>
  a.kind === b.kind && a.stage === b.stage && a.epochsCompleted === b.epochsCompleted

export const VIEWS = ['datasets', 'new-run', 'runs', 'compare', 'ablation'] as const
export type View = (typeof VIEWS)[number]

export const RUN_TABS = ['dashboard', 'attention', 'gates', 'model'] as const
export type RunTab = (typeof RUN_TABS)[number]

export const THEMES = ['system', 'light', 'dark'] as const
export type Theme = (typeof THEMES)[number]

export interface NavigationSlice {
  view: View
  runTab: RunTab
  aboutOpen: boolean
  /** The colour scheme: the system's, or the user's choice (kept in this browser's storage). */
  theme: Theme
  setTheme(theme: Theme): void
  navigate(view: View): void
  setRunTab(tab: RunTab): void
  setAboutOpen(open: boolean): void
}

export interface Connection {
  /** `connecting`/`open`: over the WebSocket of `serve`, or the desktop app's IPC (always open);
   * `no-token`: a page opened without the token of `serve`; `refused`: the server refused its token;
   * `lost`: the connection closed. */
  state: 'connecting' | 'open' | 'no-token' | 'refused' | 'lost'
  detail: string | null
}

export interface AboutSlice {
  connection: Connection
  setConnection(connection: Connection): void
  about: AboutInfo | null
  aboutError: string | null
  loadAbout(): Promise<void>
}

export interface ImportState {
  importId: string | null
  path: string
  state: 'starting' | 'progress' | 'done' | 'failed' | 'cancelled'
  progress: ImportProgress | null
  dataset: DatasetManifest | null
  error: string | null
}

export interface DatasetsSlice {
  datasets: DatasetManifest[]
  datasetProblems: DatasetListing['problems']
  datasetsLoaded: boolean
  datasetsError: string | null
  selectedDatasetId: string | null
  samples: Record<string, ImageBatch>
  importJob: ImportState | null
  /** The desktop app's way to learn a dropped file's path; null in a browser. */
  pathForFile: ((file: Blob) => string) | null
  loadDatasets(): Promise<void>
  selectDataset(id: string | null): void
  loadSamples(id: string): Promise<void>
  startImport(request: ImportRequest): Promise<void>
  cancelImport(): Promise<void>
  dismissImport(): void
  pickImportPath(): Promise<string | null>
  renameDataset(id: string, name: string): Promise<void>
  removeDataset(id: string): Promise<void>
}

/** A run's history as the UI holds it: the disk's, extended live by events. */
export interface RunView {
  run: RunMeta
  log: LogLine[]
  /** Every snapshot on disk, in the order written. */
  snapshots: SnapshotRef[]
}

export interface RunsSlice {
  runs: RunMeta[]
  runsLoaded: boolean
  runsError: string | null
  selectedRunId: string | null
  histories: Record<string, RunView>
  historyErrors: Record<string, string>
  compareIds: string[]
  actionError: string | null
  /** Runs shown from folders elsewhere (another process or machine writes them): followed, read-only. */
  attachedIds: string[]
  /** The folder each run was opened from, for those attached in this session. */
  attachedFolders: Record<string, string>
  loadRuns(): Promise<void>
  /** Shows a run folder written elsewhere and selects it; throws the host's refusal. */
  attachRun(folder: string): Promise<RunMeta>
  selectRun(id: string | null): void
  loadHistory(id: string): Promise<void>
  startRun(request: NewRunRequest): Promise<RunMeta>
  runAction(action: 'pauseRun' | 'resumeRun' | 'stopRun' | 'removeRun', id: string): Promise<void>
  /** Bit-packed exports made in this session, by run. */
  exports: Record<string, ExportSummary>
  exportStage(runId: string, stage: string): Promise<void>
  toggleCompare(id: string): void
  /** Queries the run views make; snapshots are cached (they never change once written). */
  readSnapshot(runId: string, snapshot: SnapshotRef): Promise<SnapshotRecord>
  inspectImage(request: InspectRequest): Promise<Inspection>
  readImages(dataset: string, split: 'train' | 'test', indices: number[]): Promise<ImageBatch>
  findImages(dataset: string, split: 'train' | 'test', classIndex: number, count: number): Promise<number[]>
  modelSummary(config: RunConfig, stage: string): Promise<ModelSummary>
  estimateRun(config: RunConfig): Promise<RunEstimate>
}

export interface AblationsSlice {
  ablations: AblationSummary[]
  ablationProblems: AblationListing['problems']
  ablationsLoaded: boolean
  ablationsError: string | null
  /** The group the Ablation view shows; null: the newest. */
  selectedAblation: string | null
  loadAblations(): Promise<void>
  selectAblation(group: string | null): void
  /** Opens a run in the run dashboard, as picking it in the runs list does. */
  openRun(id: string): void
}

export type WorkbenchState = NavigationSlice & AboutSlice & DatasetsSlice & RunsSlice & AblationsSlice

export type WorkbenchStore = StoreApi<WorkbenchState>

export interface StoreOptions {
  /** The desktop app (IPC, always connected) rather than a page of `serve`. */
  desktop?: boolean
  /** How buffered live events are scheduled for applying; tests pass a synchronous one. */
  schedule?: (apply: () => void) => void
}

const THEME_KEY = 'r2b-theme'

function storedTheme(): Theme {
  try {
    const value = typeof localStorage === 'undefined' ? null : localStorage.getItem(THEME_KEY)
    return (THEMES as readonly string[]).includes(value ?? '') ? (value as Theme) : 'system'
  } catch {
    return 'system'
  }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/**
 * The renderer's state, in slices. Data comes from the API (queries and the event stream) and flows one way
 * into the store; views read it with selectors and call actions.
 */
export function createWorkbenchStore(api: WorkbenchApi | null, options: StoreOptions = {}): WorkbenchStore {
  const schedule = options.schedule ?? ((apply) => setTimeout(apply, 250))
  const noApi = 'No connection to the workbench backend: open the app, or the URL that `serve` prints.'
  const need = (): WorkbenchApi => {
    if (!api) throw new Error(noApi)
    return api
  }

  const snapshotCache = new Map<string, Promise<SnapshotRecord>>()
  const store = createStore<WorkbenchState>()((set, get) => ({
    view: 'datasets',
    runTab: 'dashboard',
    aboutOpen: false,
    theme: storedTheme(),
    setTheme: (theme) => {
      set({ theme })
      try {
        localStorage.setItem(THEME_KEY, theme)
      } catch {
        // Storage may be unavailable (a sandboxed page): the choice then lasts this session.
      }
    },
    navigate: (view) => set({ view }),
    setRunTab: (runTab) => set({ runTab }),
    setAboutOpen: (aboutOpen) => set({ aboutOpen }),

    connection: { state: api ? (options.desktop ? 'open' : 'connecting') : 'no-token', detail: null },
    setConnection: (connection) => set({ connection }),
    about: null,
    aboutError: api ? null : noApi,
    loadAbout: async () => {
      if (!api) return
      try {
        set({ about: await api.about(), aboutError: null })
      } catch (error) {
        set({ aboutError: errorText(error) })
      }
    },

    // --- datasets ------------------------------------------------------------------------------------
    datasets: [],
    datasetProblems: [],
    datasetsLoaded: false,
    datasetsError: api ? null : noApi,
    selectedDatasetId: null,
    samples: {},
    importJob: null,
    pathForFile: api?.pathForFile ? (file) => (api.pathForFile as (f: Blob) => string)(file) : null,
    loadDatasets: async () => {
      if (!api) return
      try {
        const listing = await api.listDatasets()
        const selected = get().selectedDatasetId
        set({
          datasets: listing.datasets,
          datasetProblems: listing.problems,
          datasetsLoaded: true,
          datasetsError: null,
          selectedDatasetId: listing.datasets.some((d) => d.id === selected)
            ? selected
            : (listing.datasets[0]?.id ?? null),
        })
      } catch (error) {
        set({ datasetsError: errorText(error), datasetsLoaded: true })
      }
    },
    selectDataset: (selectedDatasetId) => set({ selectedDatasetId }),
    loadSamples: async (id) => {
      if (!api || get().samples[id]) return
      try {
        const batch = await api.datasetSamples(id, 8)
        set({ samples: { ...get().samples, [id]: batch } })
      } catch (error) {
        set({ datasetsError: errorText(error) })
      }
    },
    startImport: async (request) => {
      const job: ImportState = {
        importId: null,
        path: request.path,
        state: 'starting',
        progress: null,
        dataset: null,
        error: null,
      }
      set({ importJob: job })
      try {
        const { importId } = await need().importDataset(request)
        const current = get().importJob
        // The outcome may have arrived as an event before the call's answer.
        if (current && current.importId === null) set({ importJob: { ...current, importId } })
      } catch (error) {
        set({ importJob: { ...job, state: 'failed', error: errorText(error) } })
      }
    },
    cancelImport: async () => {
      const id = get().importJob?.importId
      if (id) await need().cancelImport(id)
    },
    dismissImport: () => set({ importJob: null }),
    pickImportPath: async () => need().pickImportPath(),
    renameDataset: async (id, name) => {
      const manifest = await need().renameDataset(id, name)
      set({ datasets: get().datasets.map((d) => (d.id === id ? manifest : d)) })
    },
    removeDataset: async (id) => {
      await need().removeDataset(id)
      const datasets = get().datasets.filter((d) => d.id !== id)
      set({ datasets, selectedDatasetId: datasets[0]?.id ?? null })
    },

    // --- runs ----------------------------------------------------------------------------------------
    runs: [],
    runsLoaded: false,
    runsError: api ? null : noApi,
    selectedRunId: null,
    histories: {},
    historyErrors: {},
    compareIds: [],
    actionError: null,
    attachedIds: [],
    attachedFolders: {},
    exports: {},
    exportStage: async (runId, stage) => {
      try {
        set({ actionError: null })
        const summary = await need().exportStage(runId, stage)
        set({ exports: { ...get().exports, [runId]: summary } })
      } catch (error) {
        set({ actionError: error instanceof Error ? error.message : String(error) })
      }
    },
    loadRuns: async () => {
      if (!api) return
      try {
        const { runs, attached } = await api.listRuns()
        runs.sort((a, b) => b.createdAt.localeCompare(a.createdAt))
        set({
          runs,
          attachedIds: attached,
          runsLoaded: true,
          runsError: null,
          selectedRunId: get().selectedRunId ?? runs[0]?.id ?? null,
        })
      } catch (error) {
        set({ runsError: errorText(error), runsLoaded: true })
      }
    },
    attachRun: async (folder) => {
      const run = await need().attachRun(folder)
      const { attachedIds, attachedFolders } = get()
      set({
        // The host's event may have listed it already.
        runs: [run, ...get().runs.filter((r) => r.id !== run.id)],
        attachedIds: attachedIds.includes(run.id) ? attachedIds : [...attachedIds, run.id],
        attachedFolders: { ...attachedFolders, [run.id]: folder },
        selectedRunId: run.id,
        runTab: 'dashboard',
      })
      return run
    },
    selectRun: (selectedRunId) => set({ selectedRunId }),
    loadHistory: async (id) => {
      if (!api) return
      try {
        const history: RunHistory = await api.runHistory(id)
        // Events that arrived while the history was read are on disk already: the disk's copy wins.
        set({
          histories: {
            ...get().histories,
            [id]: {
              run: history.run,
              log: history.log,
              snapshots: history.snapshots.map(({ kind, stage, epochsCompleted }) => ({
                kind,
                stage,
                epochsCompleted,
              })),
            },
          },
          historyErrors: { ...get().historyErrors, [id]: '' },
        })
      } catch (error) {
        set({ historyErrors: { ...get().historyErrors, [id]: errorText(error) } })
      }
    },
    startRun: async (request) => {
      const run = await need().startRun(request)
      set({
        runs: [run, ...get().runs.filter((r) => r.id !== run.id)],
        selectedRunId: run.id,
        histories: { ...get().histories, [run.id]: { run, log: [], snapshots: [] } },
        view: 'runs',
        runTab: 'dashboard',
      })
      return run
    },
    runAction: async (action, id) => {
      try {
        set({ actionError: null })
        await need()[action](id)
        if (action === 'removeRun') {
          const runs = get().runs.filter((r) => r.id !== id)
          const histories = { ...get().histories }
          delete histories[id]
          // An attached run is only forgotten (detached): its folder stays where it is.
          const attachedFolders = { ...get().attachedFolders }
          delete attachedFolders[id]
          set({
            runs,
            histories,
            attachedIds: get().attachedIds.filter((a) => a !== id),
            attachedFolders,
            selectedRunId: runs[0]?.id ?? null,
            compareIds: get().compareIds.filter((c) => c !== id),
          })
        }
      } catch (error) {
        set({ actionError: errorText(error) })
      }
    },
    readSnapshot: (runId, { kind, stage, epochsCompleted }) => {
      // A cache key only: never taken apart again.
      const key = JSON.stringify([runId, kind, stage, epochsCompleted])
      let cached = snapshotCache.get(key)
      if (!cached) {
        cached = need().readSnapshot(runId, kind, stage, epochsCompleted).then(decodeSnapshotData)
        cached.catch(() => snapshotCache.delete(key))
        snapshotCache.set(key, cached)
      }
      return cached
    },
    inspectImage: (request) => need().inspectImage(request),
    readImages: (dataset, split, indices) => need().readImages(dataset, split, indices),
    findImages: (dataset, split, classIndex, count) => need().findImages(dataset, split, classIndex, count),
    modelSummary: (config, stage) => need().modelSummary(config, stage),
    estimateRun: (config) => need().estimateRun(config),
    toggleCompare: (id) => {
      const ids = get().compareIds
      set({ compareIds: ids.includes(id) ? ids.filter((c) => c !== id) : [...ids, id] })
    },

    // --- ablations -----------------------------------------------------------------------------------
    ablations: [],
    ablationProblems: [],
    ablationsLoaded: false,
    ablationsError: api ? null : noApi,
    selectedAblation: null,
    loadAblations: async () => {
      if (!api) return
      try {
        const { groups, problems } = await api.listAblations()
        set({ ablations: groups, ablationProblems: problems, ablationsLoaded: true, ablationsError: null })
      } catch (error) {
        set({ ablationsError: errorText(error), ablationsLoaded: true })
      }
    },
    selectAblation: (selectedAblation) => set({ selectedAblation }),
    openRun: (id) => set({ selectedRunId: id, runTab: 'dashboard', view: 'runs' }),
  }))

  // Live events are buffered and applied together: a run streams many step records a second, and one
  // store update per batch keeps React (and Plotly) from redrawing per record.
  let pending: WorkbenchEvent[] = []
  let scheduled = false
  const flushLive = () => {
    scheduled = false
    if (pending.length === 0) return
    const batch = pending
    pending = []
    const state = store.getState()
    let runs = state.runs
    const histories = { ...state.histories }
    let importJob = state.importJob
    let reloadDatasets = false
    let reloadAblations = false
    const ablationRuns = new Set(
      state.ablationsLoaded ? state.ablations.flatMap((g) => Object.values(g.runs)) : [],
    )
    for (const event of batch) {
      if (event.type === 'run') {
        // A run of a listed ablation group moved on: its table and progress change with it.
        if (ablationRuns.has(event.run.id)) reloadAblations = true
        const known = runs.some((r) => r.id === event.run.id)
        runs = known ? runs.map((r) => (r.id === event.run.id ? event.run : r)) : [event.run, ...runs]
        const history = histories[event.run.id]
        if (history) histories[event.run.id] = { ...history, run: event.run }
      } else if (event.type === 'record') {
        const history = histories[event.runId]
        if (history) histories[event.runId] = { ...history, log: [...history.log, event.record] }
      } else if (event.type === 'snapshot') {
        const history = histories[event.runId]
        const ref: SnapshotRef = {
          kind: event.kind,
          stage: event.stage,
          epochsCompleted: event.epochsCompleted,
        }
        if (history && !history.snapshots.some((s) => sameSnapshot(s, ref)))
          histories[event.runId] = { ...history, snapshots: [...history.snapshots, ref] }
      } else if (event.type === 'import') {
        if (importJob && (importJob.importId === event.importId || importJob.importId === null)) {
          importJob = {
            ...importJob,
            importId: event.importId,
            state: event.state,
            progress: event.progress ?? importJob.progress,
            dataset: event.dataset,
            error: event.error,
          }
        }
        if (event.state === 'done') reloadDatasets = true
      }
    }
    const t0 = typeof performance === 'undefined' ? 0 : performance.now()
    store.setState({ runs, histories, importJob })
    // For measurements: applying a batch of live events, the views' renders included.
    if (t0) performance.measure?.('live-flush', { start: t0 })
    if (reloadAblations) void store.getState().loadAblations()
    if (reloadDatasets) {
      void store
        .getState()
        .loadDatasets()
        .then(() => {
          const created = store.getState().importJob?.dataset
          if (created) store.setState({ selectedDatasetId: created.id })
        })
    }
  }

  api?.onEvent((event) => {
    if (event.type === 'backend') {
      const about = store.getState().about
      if (about) store.setState({ about: { ...about, backend: event.backend, backendError: event.error } })
      else void store.getState().loadAbout()
      return
    }
    pending.push(event)
    if (!scheduled) {
      scheduled = true
      schedule(flushLive)
    }
  })
  return store
}
