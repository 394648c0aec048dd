import { useEffect, useRef } from 'react'
import { useWorkbench } from '../store/context'

/** Versions, the data directory and the training backend with its adapter (and why it was chosen). */
export function AboutPanel({ onClose }: { onClose: () => void }) {
  const about = useWorkbench((s) => s.about)
  const error = useWorkbench((s) => s.aboutError)
  const closeButton = useRef<HTMLButtonElement>(null)
  useEffect(() => closeButton.current?.focus(), [])

  const backend = about?.backend ?? null
  return (
    <div className="modal-backdrop" onClick={onClose}>
      <section
        className="modal"
        role="dialog"
        aria-modal="true"
        aria-labelledby="about-title"
        onClick={(e) => e.stopPropagation()}
        onKeyDown={(e) => e.key === 'Escape' && onClose()}
      >
        <header>
          <h2 id="about-title">About R2B Workbench</h2>
          <button ref={closeButton} type="button" className="link" onClick={onClose} aria-label="Close">
            ✕
          </button>
        </header>
        {error && <p className="error">{error}</p>}
        {about && (
          <>
            <h3>Training backend</h3>
            {about.backendError && <p className="error">The training worker failed: {about.backendError}</p>}
            {!backend && !about.backendError && <p className="muted">The training worker is starting…</p>}
            {backend && (
              <dl className="facts" aria-label="Training backend">
                <dt>Backend</dt>
                <dd>
                  {backend.backend} (tfjs {backend.tfjsVersion})
                </dd>
                <dt>Why</dt>
                <dd>{backend.reason}</dd>
                <dt>Adapter</dt>
                <dd>
                  {backend.adapter
                    ? `${backend.adapter.description || backend.adapter.device} — ${backend.adapter.vendor}, ${
                        backend.adapter.architecture
                      }${backend.adapter.isSoftware ? ' (software)' : ''}`
                    : backend.requested === 'wasm' || backend.requested === 'cpu'
                      ? `not looked for (R2B_BACKEND=${backend.requested})`
                      : 'no WebGPU adapter found'}
                </dd>
              </dl>
            )}
            {backend?.slow && (
              <p className="warning" role="note">
                Training runs on the CPU here
                {backend.adapter?.isSoftware ? ' (the GPU adapter is a software one)' : ''}: expect small
                presets only. A machine with a GPU trains the paper&apos;s configurations.
              </p>
            )}
            <h3>PyTorch engine</h3>
            {about.torch.available ? (
              <dl className="facts" aria-label="PyTorch engine">
                <dt>PyTorch</dt>
                <dd>{about.torch.torch}</dd>
                <dt>Python</dt>
                <dd>{about.torch.python}</dd>
                <dt>Devices</dt>
                <dd>{about.torch.devices.join('; ')}</dd>
              </dl>
            ) : (
              <p className="muted" aria-label="PyTorch engine">
                Not available: {about.torch.reason}
              </p>
            )}
            <h3>Versions</h3>
            <dl className="facts" aria-label="Versions">
              <dt>Workbench</dt>
              <dd>{about.appVersion}</dd>
              {Object.entries(about.versions).map(([name, version]) => (
                <FactRow key={name} name={name} value={version} />
              ))}
              <dt>Data directory</dt>
              <dd>
                <code>{about.dataHome}</code>
              </dd>
            </dl>
          </>
        )}
      </section>
    </div>
  )
}

function FactRow({ name, value }: { name: string; value: string }) {
  return (
    <>
      <dt>{name}</dt>
      <dd>{value}</dd>
    </>
  )
}
