import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { findWorkbenchApi } from './bridge'
import { createWorkbenchStore, type WorkbenchStore } from './store'
import { StoreContext } from './store/context'
import './styles.css'

let store: WorkbenchStore | null = null
const api = findWorkbenchApi(window, undefined, {
  onOpen: () => store?.getState().setConnection({ state: 'open', detail: null }),
  onClose: ({ beforeOpen, reason }) => {
    // A socket refused before it opened, by a server that does answer HTTP, refused this page's token.
    if (!beforeOpen) return store?.getState().setConnection({ state: 'lost', detail: reason || null })
    void fetch(location.pathname, { method: 'HEAD', cache: 'no-store' }).then(
      () => store?.getState().setConnection({ state: 'refused', detail: null }),
      () => store?.getState().setConnection({ state: 'lost', detail: 'the workbench is not running' }),
    )
  },
})
store = createWorkbenchStore(api, { desktop: 'workbenchTransport' in window })
const root = document.getElementById('root')
if (!root) throw new Error('index.html has no #root element')
createRoot(root).render(
  <StrictMode>
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>
  </StrictMode>,
)
