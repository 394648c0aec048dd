export function RunsView() {
  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <div className="empty">
        <p>No runs to show yet.</p>
        <p className="muted">
          Runs you start appear here with their stages, curves, attention maps and gates.
        </p>
      </div>
    </section>
  )
}
