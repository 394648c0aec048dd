import { createStore, type StoreApi } from 'zustand/vanilla'
import type { AboutInfo, WorkbenchApi } from '../../../shared/api'

export const VIEWS = ['datasets', 'runs', 'new-run'] as const
export type View = (typeof VIEWS)[number]

export interface NavigationSlice {
  view: View
  aboutOpen: boolean
  navigate(view: View): void
  setAboutOpen(open: boolean): void
}

export interface AboutSlice {
  about: AboutInfo | null
  aboutError: string | null
  loadAbout(): Promise<void>
}

export type WorkbenchState = NavigationSlice & AboutSlice

export type WorkbenchStore = StoreApi<WorkbenchState>

/**
 * The renderer's state, in slices. Data comes from the API (queries and the event stream) and flows one way
 * into the store; views read it with selectors and call actions.
 */
export function createWorkbenchStore(api: WorkbenchApi | null): WorkbenchStore {
  const store = createStore<WorkbenchState>()((set) => ({
    view: 'datasets',
    aboutOpen: false,
    navigate: (view) => set({ view }),
    setAboutOpen: (aboutOpen) => set({ aboutOpen }),

    about: null,
    aboutError: api
      ? null
      : 'No connection to the workbench backend: open the app, or the URL that `serve` prints.',
    loadAbout: async () => {
      if (!api) return
      try {
        set({ about: await api.about(), aboutError: null })
      } catch (error) {
        set({ aboutError: error instanceof Error ? error.message : String(error) })
      }
    },
  }))
  api?.onEvent((event) => {
    if (event.type === 'backend') {
      const about = store.getState().about
      if (about) store.setState({ about: { ...about, backend: event.backend, backendError: event.error } })
      else void store.getState().loadAbout()
    }
  })
  return store
}
