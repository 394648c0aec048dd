import { useEffect } from 'react'
import { VIEWS, type View } from './store'
import { useWorkbench } from './store/context'
import { AboutPanel } from './views/AboutPanel'
import { DatasetsView } from './views/DatasetsView'
import { NewRunView } from './views/NewRunView'
import { RunsView } from './views/RunsView'
import { CompareView } from './views/CompareView'

const VIEW_LABELS: Record<View, string> = {
  datasets: 'Datasets',
  'new-run': 'New run',
  runs: 'Runs',
  compare: 'Compare',
}

function BackendBadge() {
  const backend = useWorkbench((s) => s.about?.backend ?? null)
  const error = useWorkbench((s) => s.about?.backendError ?? null)
  if (error) return <span className="badge badge-error">backend failed</span>
  if (!backend) return <span className="badge">starting backend…</span>
  return (
    <span className={backend.slow ? 'badge badge-warn' : 'badge badge-ok'} title={backend.reason}>
      {backend.backend}
      {backend.slow ? ' · slow' : ''}
    </span>
  )
}

export function App() {
  const view = useWorkbench((s) => s.view)
  const navigate = useWorkbench((s) => s.navigate)
  const aboutOpen = useWorkbench((s) => s.aboutOpen)
  const setAboutOpen = useWorkbench((s) => s.setAboutOpen)
  const loadAbout = useWorkbench((s) => s.loadAbout)

  useEffect(() => {
    void loadAbout()
  }, [loadAbout])

  return (
    <div className="app">
      <nav className="sidebar" aria-label="Main">
        <div className="brand">
          R2B <span>Workbench</span>
        </div>
        <ul>
          {VIEWS.map((v) => (
            <li key={v}>
              <button
                type="button"
                className={v === view ? 'nav-item active' : 'nav-item'}
                aria-current={v === view ? 'page' : undefined}
                onClick={() => navigate(v)}
              >
                {VIEW_LABELS[v]}
              </button>
            </li>
          ))}
        </ul>
        <div className="sidebar-footer">
          <BackendBadge />
          <button type="button" className="link" onClick={() => setAboutOpen(true)}>
            About
          </button>
        </div>
      </nav>
      <main className="content">
        {view === 'datasets' && <DatasetsView />}
        {view === 'runs' && <RunsView />}
        {view === 'new-run' && <NewRunView />}
        {view === 'compare' && <CompareView />}
      </main>
      {aboutOpen && <AboutPanel onClose={() => setAboutOpen(false)} />}
    </div>
  )
}
