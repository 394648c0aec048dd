import { useEffect, useState } from 'react'
import { RUN_TABS, type RunTab } from '../store'
import { useWorkbench } from '../store/context'
import { percent } from '../lib/format'
import { AttentionView } from './AttentionView'
import { DashboardView } from './DashboardView'
import { GatesView } from './GatesView'
import { ModelView } from './ModelView'

const TAB_LABELS: Record<RunTab, string> = {
  dashboard: 'Dashboard',
  attention: 'Attention',
  gates: 'Gates',
  model: 'Model',
}

/** An inline form: the path of a run folder another process or machine writes (the renderer has no folder
 * dialog), opened through the host, whose refusal is shown at the field. */
function OpenRunFolder({ onClose }: { onClose(): void }) {
  const attachRun = useWorkbench((s) => s.attachRun)
  const [folder, setFolder] = useState('')
  const [opening, setOpening] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)
  return (
    <form
      className="attach-form"
      aria-label="Open run folder"
      onSubmit={(e) => {
        e.preventDefault()
        const path = folder.trim()
        if (!path) return
        setOpening(true)
        setProblem(null)
        attachRun(path).then(
          () => {
            setOpening(false)
            onClose()
          },
          (error: unknown) => {
            setOpening(false)
            setProblem(error instanceof Error ? error.message : String(error))
          },
        )
      }}
    >
      <label>
        Run folder
        <input
          type="text"
          value={folder}
          autoFocus
          onChange={(e) => setFolder(e.target.value)}
          placeholder="/shared/runs/run-20260101-120000-ab12"
          disabled={opening}
          aria-invalid={problem ? true : undefined}
          aria-describedby={`attach-hint${problem ? ' attach-problem' : ''}`}
        />
        {problem && (
          <span id="attach-problem" className="error small field-problem">
            {problem}
          </span>
        )}
        <span id="attach-hint" className="muted small">
          A run folder on the workbench machine that another process writes (a cluster job, shared storage):
          shown here read-only and followed live.
        </span>
      </label>
      <div className="row">
        <button type="submit" className="primary" disabled={opening || !folder.trim()}>
          {opening ? 'Opening…' : 'Open'}
        </button>
        <button type="button" onClick={onClose}>
          Cancel
        </button>
      </div>
    </form>
  )
}

export function RunsView() {
  const runs = useWorkbench((s) => s.runs)
  const loaded = useWorkbench((s) => s.runsLoaded)
  const error = useWorkbench((s) => s.runsError)
  const selectedId = useWorkbench((s) => s.selectedRunId)
  const select = useWorkbench((s) => s.selectRun)
  const loadRuns = useWorkbench((s) => s.loadRuns)
  const loadHistory = useWorkbench((s) => s.loadHistory)
  const history = useWorkbench((s) => (selectedId ? s.histories[selectedId] : undefined))
  const historyError = useWorkbench((s) => (selectedId ? s.historyErrors[selectedId] : undefined))
  const tab = useWorkbench((s) => s.runTab)
  const setTab = useWorkbench((s) => s.setRunTab)
  const navigate = useWorkbench((s) => s.navigate)
  const attachedIds = useWorkbench((s) => s.attachedIds)
  const attachedFolders = useWorkbench((s) => s.attachedFolders)
  const [attaching, setAttaching] = useState(false)

  useEffect(() => {
    void loadRuns()
  }, [loadRuns])
  useEffect(() => {
    if (selectedId && !history) void loadHistory(selectedId)
  }, [selectedId, history, loadHistory])

  return (
    <section aria-labelledby="runs-title" className="runs-layout">
      <div className="run-list">
        <h1 id="runs-title">Runs</h1>
        {attaching ? (
          <OpenRunFolder onClose={() => setAttaching(false)} />
        ) : (
          <button type="button" onClick={() => setAttaching(true)}>
            Open run folder…
          </button>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {loaded && runs.length === 0 && !error && (
          <div className="empty">
            <p>No runs yet.</p>
            <button type="button" className="primary" onClick={() => navigate('new-run')}>
              Start one
            </button>
          </div>
        )}
        <ul aria-label="Run list">
          {runs.map((run) => {
            const last = [...run.stages].reverse().find((s) => s.testTop1 !== null)
            const attached = attachedIds.includes(run.id)
            const folder = attachedFolders[run.id]
            return (
              <li key={run.id}>
                <button
                  type="button"
                  className={run.id === selectedId ? 'run-item active' : 'run-item'}
                  aria-current={run.id === selectedId ? 'true' : undefined}
                  onClick={() => select(run.id)}
                >
                  <span className="run-name">{run.name}</span>
                  <span className={`status status-${run.status}`}>{run.status}</span>
                  {attached && (
                    <span
                      className="badge"
                      title={
                        folder
                          ? `Attached from ${folder}: written elsewhere, followed read-only`
                          : 'Attached: a folder written elsewhere, followed read-only'
                      }
                    >
                      attached
                    </span>
                  )}
                  <span className="muted small">
                    {run.config.pipeline} · {new Date(run.createdAt).toLocaleString()}
                    {last ? ` · ${last.name} top-1 ${percent(last.testTop1)}` : ''}
                  </span>
                </button>
              </li>
            )
          })}
        </ul>
      </div>
      <div className="run-detail">
        {selectedId && historyError && (
          <p className="error" role="alert">
            Could not read run {selectedId}: {historyError}
          </p>
        )}
        {selectedId && !history && !historyError && <p className="muted">Reading the run…</p>}
        {history && (
          <>
            <div className="tabs" role="tablist" aria-label="Run views">
              {RUN_TABS.map((t) => (
                <button
                  key={t}
                  type="button"
                  role="tab"
                  id={`tab-${t}`}
                  aria-selected={t === tab}
                  aria-controls="run-tabpanel"
                  tabIndex={t === tab ? 0 : -1}
                  className={t === tab ? 'tab active' : 'tab'}
                  onClick={() => setTab(t)}
                  onKeyDown={(e) => {
                    const i = RUN_TABS.indexOf(t)
                    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
                      const next = RUN_TABS[
                        (i + (e.key === 'ArrowRight' ? 1 : RUN_TABS.length - 1)) % RUN_TABS.length
                      ] as RunTab
                      setTab(next)
                      document.getElementById(`tab-${next}`)?.focus()
                    }
                  }}
                >
                  {TAB_LABELS[t]}
                </button>
              ))}
            </div>
            <div id="run-tabpanel" role="tabpanel" aria-labelledby={`tab-${tab}`}>
              {tab === 'dashboard' && <DashboardView view={history} />}
              {tab === 'attention' && <AttentionView view={history} />}
              {tab === 'gates' && <GatesView view={history} />}
              {tab === 'model' && <ModelView view={history} />}
            </div>
          </>
        )}
      </div>
    </section>
  )
}
