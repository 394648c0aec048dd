import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { App } from './App'
import { findWorkbenchApi } from './bridge'
import { createWorkbenchStore } from './store'
import { StoreContext } from './store/context'
import './styles.css'

const store = createWorkbenchStore(findWorkbenchApi())
const root = document.getElementById('root')
if (!root) throw new Error('index.html has no #root element')
createRoot(root).render(
  <StrictMode>
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>
  </StrictMode>,
)
