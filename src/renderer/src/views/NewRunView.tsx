export function NewRunView() {
  return (
    <section aria-labelledby="new-run-title">
      <h1 id="new-run-title">New run</h1>
      <div className="empty">
        <p>Pick a dataset, a pipeline (Real-to-Binary, the strong baseline, or an ablation) and a preset.</p>
        <p className="muted">
          Until this form is connected, check the training backend from a terminal:{' '}
          <code>npm run r2b -- check</code>.
        </p>
      </div>
    </section>
  )
}
