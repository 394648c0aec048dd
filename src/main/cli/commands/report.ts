import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { CAC } from 'cac'
import { writeFileAtomic } from '../../atomic-write'
import { buildReport } from '../../reports/html-report'
import { RunStore } from '../../runs/run-store'

/** Writes the report page (atomically) and returns its path. */
export async function writeReport(store: RunStore, runId: string, outDir: string): Promise<string> {
  const html = await buildReport(store, runId)
  await mkdir(outDir, { recursive: true })
  const file = join(outDir, 'index.html')
  await writeFileAtomic(file, html)
  return file
}

export function registerReport(cli: CAC): void {
  cli
    .command(
      'report <run>',
      'A self-contained HTML page of a run: curves, losses, attention grids, gate heatmaps',
    )
    .option('--out <dir>', 'Folder for index.html (default: the run folder’s report/)')
    .action(async (runId: string, options: { out?: string }) => {
      const store = new RunStore()
      const file = await (async () => {
        await store.read(runId)
        return writeReport(store, runId, resolve(options.out ?? join(store.dir(runId), 'report')))
      })()
      process.stdout.write(`wrote ${file}\nopen it in a browser: file://${file}\n`)
    })
}
