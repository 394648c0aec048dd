import { useEffect } from 'react'
import { THEMES, VIEWS, type Theme, type View } from './store'
import { useWorkbench } from './store/context'
import { AboutPanel } from './views/AboutPanel'
import { DatasetsView } from './views/DatasetsView'
import { NewRunView } from './views/NewRunView'
import { RunsView } from './views/RunsView'
import { CompareView } from './views/CompareView'
import { AblationView } from './views/AblationView'

const VIEW_LABELS: Record<View, string> = {
  datasets: 'Datasets',
  'new-run': 'New run',
  runs: 'Runs',
  compare: 'Compare',
  ablation: 'Ablation',
}

const THEME_LABELS: Record<Theme, string> = { system: 'as the system', light: 'light', dark: 'dark' }

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

/** What a page of `serve` says when it cannot talk to the workbench: no token, or one the server refused. */
function ConnectionPage({ state }: { state: 'no-token' | 'refused' }) {
  return (
    <main className="connection-page" aria-labelledby="connection-title">
      <h1 id="connection-title">
        {state === 'no-token' ? 'This page has no access token' : 'The workbench refused this page’s token'}
      </h1>
      <p>
        {state === 'no-token'
          ? 'The workbench answers only pages opened with the token that `serve` prints with its address.'
          : 'The token in this address is wrong, or belongs to an earlier `serve`: each start prints a new one.'}
      </p>
      <p>
        Open the address that <code>npm run r2b -- serve</code> printed; it ends in <code>?token=…</code>.
      </p>
    </main>
  )
}

export function App() {
  const view = useWorkbench((s) => s.view)
  const navigate = useWorkbench((s) => s.navigate)
  const aboutOpen = useWorkbench((s) => s.aboutOpen)
  const setAboutOpen = useWorkbench((s) => s.setAboutOpen)
  const loadAbout = useWorkbench((s) => s.loadAbout)
  const theme = useWorkbench((s) => s.theme)
  const setTheme = useWorkbench((s) => s.setTheme)
  const connection = useWorkbench((s) => s.connection)

  useEffect(() => {
    void loadAbout()
  }, [loadAbout])
  useEffect(() => {
    const root = document.documentElement
    if (theme === 'system') delete root.dataset.theme
    else root.dataset.theme = theme
  }, [theme])

  if (connection.state === 'no-token' || connection.state === 'refused')
    return <ConnectionPage state={connection.state} />

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
          <label>
            Theme
            <select value={theme} onChange={(e) => setTheme(e.target.value as Theme)}>
              {THEMES.map((t) => (
                <option key={t} value={t}>
                  {THEME_LABELS[t]}
                </option>
              ))}
            </select>
          </label>
          <button type="button" className="link" onClick={() => setAboutOpen(true)}>
            About
          </button>
        </div>
      </nav>
      <main className="content">
        {connection.state === 'lost' && (
          <p className="error" role="alert">
            The connection to the workbench closed{connection.detail ? `: ${connection.detail}` : ''}. Reload
            the page once it runs again.
          </p>
        )}
        {view === 'datasets' && <DatasetsView />}
        {view === 'runs' && <RunsView />}
        {view === 'new-run' && <NewRunView />}
        {view === 'compare' && <CompareView />}
        {view === 'ablation' && <AblationView />}
      </main>
      {aboutOpen && <AboutPanel onClose={() => setAboutOpen(false)} />}
    </div>
  )
}
