/** `predict FILE IMAGE…`: top-5 classes of each image under an exported binary model. */
import type { CAC } from 'cac'
import { predictImages } from '../../deploy/predict'
import { initBackend, releaseBackend } from '../../backend/backend'

export function registerPredict(cli: CAC): void {
  cli
    .command('predict <model> [...images]', 'Top-5 predictions of an exported model on image files')
    .option('--json', 'Print JSON')
    .action(async (model: string, images: string[], flags: { json?: boolean }) => {
      const backend = await initBackend()
      const results = await predictImages(String(model), images.map(String)).finally(releaseBackend)
      for (const r of results) if (r.converted) process.stderr.write(`note: ${r.converted}\n`)
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ backend: backend.backend, predictions: results })}\n`)
        return
      }
      for (const r of results) {
        process.stdout.write(`${r.image}\n`)
        for (const t of r.top)
          process.stdout.write(`  ${(t.probability * 100).toFixed(1).padStart(5)}%  ${t.name}\n`)
      }
    })
}
