import { useEffect, useMemo, useState, type DragEvent } from 'react'
import { decodeUint8 } from '../../../shared/binary'
import type { DatasetManifest } from '../../../shared/datasets'
import { ImageCanvas, imageAt } from '../components/ImageCanvas'
import { useWorkbench } from '../store/context'
import { formatDuration } from '../lib/format'

export function DatasetsView() {
  const datasets = useWorkbench((s) => s.datasets)
  const problems = useWorkbench((s) => s.datasetProblems)
  const loaded = useWorkbench((s) => s.datasetsLoaded)
  const error = useWorkbench((s) => s.datasetsError)
  const selectedId = useWorkbench((s) => s.selectedDatasetId)
  const select = useWorkbench((s) => s.selectDataset)
  const load = useWorkbench((s) => s.loadDatasets)
  useEffect(() => {
    void load()
  }, [load])
  const selected = datasets.find((d) => d.id === selectedId) ?? null

  return (
    <section aria-labelledby="datasets-title">
      <h1 id="datasets-title">Datasets</h1>
      <ImportPanel />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {loaded && datasets.length === 0 && !error && (
        <div className="empty">
          <p>No datasets yet.</p>
          <p className="muted">
            Import CIFAR-10/100 (archive or folder), MNIST-style IDX files or a folder with one sub-folder of
            images per class above. Starting a run on <code>fashion-mnist</code> registers the bundled
            Fashion-MNIST.
          </p>
        </div>
      )}
      {datasets.length > 0 && (
        <table className="table" aria-label="Datasets">
          <thead>
            <tr>
              <th>Name</th>
              <th>Id</th>
              <th>Format</th>
              <th>Shape</th>
              <th>Classes</th>
              <th>Train</th>
              <th>Test</th>
            </tr>
          </thead>
          <tbody>
            {datasets.map((d) => (
              <tr key={d.id} className={d.id === selectedId ? 'selected' : undefined}>
                <td>
                  <button
                    type="button"
                    className="link"
                    onClick={() => select(d.id)}
                    aria-pressed={d.id === selectedId}
                  >
                    {d.name}
                  </button>
                </td>
                <td>
                  <code>{d.id}</code>
                </td>
                <td>{d.format}</td>
                <td>{d.shape.join('×')}</td>
                <td>{d.classes.length}</td>
                <td>{d.splits.train.toLocaleString()}</td>
                <td>{d.splits.test.toLocaleString()}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {problems.length > 0 && (
        <div className="warning" role="note">
          {problems.map((p) => (
            <p key={p.id}>
              Folder <code>{p.id}</code> could not be read: {p.reason}
            </p>
          ))}
        </div>
      )}
      {selected && <DatasetDetail key={selected.id} dataset={selected} />}
    </section>
  )
}

function ImportPanel() {
  const job = useWorkbench((s) => s.importJob)
  const startImport = useWorkbench((s) => s.startImport)
  const cancel = useWorkbench((s) => s.cancelImport)
  const dismiss = useWorkbench((s) => s.dismissImport)
  const pick = useWorkbench((s) => s.pickImportPath)
  const canPick = useWorkbench((s) => s.about?.canPickFiles ?? false)
  const pathForFile = useWorkbench((s) => s.pathForFile)
  const [path, setPath] = useState('')
  const [name, setName] = useState('')
  const [dropHint, setDropHint] = useState<string | null>(null)
  const [dragging, setDragging] = useState(false)
  const running = job !== null && (job.state === 'starting' || job.state === 'progress')

  const submit = (source: string) => {
    if (!source.trim()) return
    void startImport({ path: source.trim(), ...(name.trim() ? { name: name.trim() } : {}) })
  }

  const onDrop = (event: DragEvent<HTMLDivElement>) => {
    event.preventDefault()
    setDragging(false)
    const file = event.dataTransfer.files[0]
    const fromApp = file && pathForFile ? pathForFile(file) : ''
    // Browsers do not reveal a dropped file's path; a file manager's drag usually carries its file:// URL.
    const uri = event.dataTransfer.getData('text/uri-list').split('\n')[0]?.trim() ?? ''
    const fromUri = uri.startsWith('file://') ? decodeURIComponent(new URL(uri).pathname) : ''
    const dropped = fromApp || fromUri || event.dataTransfer.getData('text/plain').trim()
    if (dropped) {
      setPath(dropped)
      setDropHint(null)
      submit(dropped)
    } else
      setDropHint('This browser does not tell the page where a dropped file lives: type or paste its path.')
  }

  const progress = job?.progress
  const fraction =
    progress && progress.itemsTotal
      ? progress.itemsDone / progress.itemsTotal
      : progress && progress.bytesTotal
        ? progress.bytesDone / progress.bytesTotal
        : null

  return (
    <div
      className={dragging ? 'dropzone dragging' : 'dropzone'}
      onDragOver={(e) => {
        e.preventDefault()
        setDragging(true)
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
      aria-label="Import a dataset"
      role="group"
    >
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault()
          submit(path)
        }}
      >
        <label className="grow">
          Path on the workbench machine
          <input
            type="text"
            value={path}
            onChange={(e) => setPath(e.target.value)}
            placeholder="/data/cifar-10-python.tar.gz, an IDX folder, or a folder of class folders"
            disabled={running}
          />
        </label>
        <label>
          Name (optional)
          <input type="text" value={name} onChange={(e) => setName(e.target.value)} disabled={running} />
        </label>
        {canPick && (
          <button
            type="button"
            disabled={running}
            onClick={() =>
              void pick().then((chosen) => {
                if (chosen) setPath(chosen)
              })
            }
          >
            Browse…
          </button>
        )}
        <button type="submit" className="primary" disabled={running || !path.trim()}>
          Import
        </button>
      </form>
      <p className="muted small">…or drop a file or folder here. The import runs in the workbench process.</p>
      {dropHint && <p className="warning small">{dropHint}</p>}
      {job && (
        <div className="import-status" role="status" aria-live="polite">
          {running && (
            <>
              <progress max={1} value={fraction ?? undefined} aria-label="Import progress" />
              <span>
                {progress
                  ? `${progress.phase} · ${progress.itemsDone.toLocaleString()}${
                      progress.itemsTotal ? ` / ${progress.itemsTotal.toLocaleString()}` : ''
                    } items${progress.etaSeconds !== null ? ` · ${formatDuration(progress.etaSeconds)} left` : ''}`
                  : 'starting…'}
              </span>
              <button type="button" onClick={() => void cancel()}>
                Cancel
              </button>
            </>
          )}
          {job.state === 'done' && job.dataset && (
            <span className="ok">
              Imported <strong>{job.dataset.name}</strong> ({job.dataset.splits.train.toLocaleString()} train,{' '}
              {job.dataset.splits.test.toLocaleString()} test
              {job.dataset.skipped.count > 0 ? `, ${job.dataset.skipped.count} files skipped` : ''}).
            </span>
          )}
          {job.state === 'failed' && <span className="error">Import failed: {job.error}</span>}
          {job.state === 'cancelled' && <span className="muted">Import cancelled; nothing was stored.</span>}
          {!running && (
            <button type="button" className="link" onClick={dismiss}>
              Dismiss
            </button>
          )}
        </div>
      )}
    </div>
  )
}

function DatasetDetail({ dataset }: { dataset: DatasetManifest }) {
  const samples = useWorkbench((s) => s.samples[dataset.id])
  const loadSamples = useWorkbench((s) => s.loadSamples)
  const rename = useWorkbench((s) => s.renameDataset)
  const remove = useWorkbench((s) => s.removeDataset)
  const [editing, setEditing] = useState(false)
  const [name, setName] = useState(dataset.name)
  const [confirming, setConfirming] = useState(false)
  const [problem, setProblem] = useState<string | null>(null)
  useEffect(() => {
    void loadSamples(dataset.id)
  }, [dataset.id, loadSamples])

  const byClass = useMemo(() => {
    if (!samples) return null
    const pixels = decodeUint8(samples.pixels)
    const groups = dataset.classes.map(() => [] as Uint8Array[])
    samples.labels.forEach((label, k) => groups[label]?.push(imageAt(pixels, samples.shape, k)))
    return groups
  }, [samples, dataset.classes])

  const act = (work: Promise<void>) =>
    work.then(
      () => setProblem(null),
      (error: unknown) => setProblem(error instanceof Error ? error.message : String(error)),
    )

  return (
    <section className="panel" aria-label={`Dataset ${dataset.name}`}>
      <header className="row">
        {editing ? (
          <form
            className="row"
            onSubmit={(e) => {
              e.preventDefault()
              void act(rename(dataset.id, name)).then(() => setEditing(false))
            }}
          >
            <label>
              New name
              <input autoFocus type="text" value={name} onChange={(e) => setName(e.target.value)} />
            </label>
            <button type="submit" className="primary" disabled={!name.trim()}>
              Save
            </button>
            <button type="button" onClick={() => setEditing(false)}>
              Cancel
            </button>
          </form>
        ) : (
          <>
            <h2 className="grow">{dataset.name}</h2>
            <button type="button" onClick={() => setEditing(true)}>
              Rename
            </button>
            <button type="button" className="danger" onClick={() => setConfirming(true)}>
              Delete
            </button>
          </>
        )}
      </header>
      {confirming && (
        <div className="confirm" role="alertdialog" aria-label="Confirm delete">
          <span>
            Delete <strong>{dataset.name}</strong> and its{' '}
            {(dataset.splits.train + dataset.splits.test).toLocaleString()} images from the store? Runs that
            use it cannot be resumed afterwards.
          </span>
          <button type="button" className="danger" onClick={() => void act(remove(dataset.id))}>
            Delete dataset
          </button>
          <button type="button" autoFocus onClick={() => setConfirming(false)}>
            Keep it
          </button>
        </div>
      )}
      {problem && (
        <p className="error" role="alert">
          {problem}
        </p>
      )}
      <p className="muted">
        {dataset.format} · {dataset.shape.join('×')} · {dataset.classes.length} classes · source{' '}
        <code>{dataset.source.path}</code>
      </p>
      <div className="two-columns">
        <div>
          <h3>Samples per class</h3>
          {!byClass && <p className="muted">Loading samples…</p>}
          {byClass && (
            <div className="sample-grid" aria-label="Samples per class">
              {byClass.map((images, label) => (
                <div key={label} className="sample-row">
                  <span className="sample-label">{dataset.classes[label]}</span>
                  {images.map((pixels, k) => (
                    <ImageCanvas
                      key={k}
                      pixels={pixels}
                      shape={dataset.shape}
                      size={40}
                      label={`${dataset.classes[label]} sample ${k + 1}`}
                    />
                  ))}
                </div>
              ))}
            </div>
          )}
        </div>
        <div>
          <h3>Images per class</h3>
          <ClassHistogram dataset={dataset} />
        </div>
      </div>
    </section>
  )
}

/**
 * Images per class and split as plain bars (no plotting library: the first page a user sees stays light),
 * a table underneath for screen readers and exact numbers.
 */
function ClassHistogram({ dataset }: { dataset: DatasetManifest }) {
  const max = Math.max(1, ...dataset.classCounts.train, ...dataset.classCounts.test)
  return (
    <table className="histogram" aria-label="Class histogram">
      <thead>
        <tr>
          <th>class</th>
          <th>
            images (<span className="swatch train" /> train, <span className="swatch test" /> test)
          </th>
        </tr>
      </thead>
      <tbody>
        {dataset.classes.map((name, k) => {
          const train = dataset.classCounts.train[k] ?? 0
          const test = dataset.classCounts.test[k] ?? 0
          return (
            <tr key={name}>
              <th scope="row">{name}</th>
              <td>
                <div className="bar-pair">
                  <span className="bar train" style={{ width: `${(100 * train) / max}%` }} />
                  <span className="bar-value">{train.toLocaleString()}</span>
                </div>
                <div className="bar-pair">
                  <span className="bar test" style={{ width: `${(100 * test) / max}%` }} />
                  <span className="bar-value">{test.toLocaleString()}</span>
                </div>
              </td>
            </tr>
          )
        })}
      </tbody>
    </table>
  )
}
