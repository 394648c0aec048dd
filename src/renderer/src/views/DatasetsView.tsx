export function DatasetsView() {
  return (
    <section aria-labelledby="datasets-title">
      <h1 id="datasets-title">Datasets</h1>
      <div className="empty">
        <p>No datasets in this window yet.</p>
        <p className="muted">
          Import CIFAR archives, IDX files or a folder of images per class from a terminal:{' '}
          <code>npm run r2b -- import &lt;path&gt;</code>. The bundled Fashion-MNIST is always available.
        </p>
      </div>
    </section>
  )
}
