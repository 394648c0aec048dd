import { Presets, SingleBar } from 'cli-progress'
import type { ImportProgress } from '../../shared/datasets'

export interface ProgressBar {
  /** `total` changes the bar's length (imports learn theirs as they scan). */
  update(done: number, status?: string, total?: number): void
  stop(): void
}

/** A progress bar on stderr (stdout stays clean for --json), with ETA and a free-form status field. */
export function progressBar(label: string, total: number, enabled = process.stderr.isTTY): ProgressBar {
  if (!enabled) {
    // Not a terminal (CI, pipes): one line per tenth of the work instead of redraws.
    let lastTenth = -1
    return {
      update(done, status = '', newTotal) {
        if (newTotal !== undefined) total = newTotal
        const tenth = Math.floor((done / Math.max(total, 1)) * 10)
        if (tenth === lastTenth) return
        lastTenth = tenth
        process.stderr.write(`${label} ${done}/${total} ${status}\n`)
      },
      stop() {},
    }
  }
  const bar = new SingleBar(
    {
      format: `${label} [{bar}] {value}/{total} | ETA {eta_formatted} | {status}`,
      stream: process.stderr,
      hideCursor: true,
      etaBuffer: 20,
    },
    Presets.shades_classic,
  )
  bar.start(Math.max(total, 1), 0, { status: '' })
  return {
    update: (done, status = '', newTotal) => {
      if (newTotal !== undefined) bar.setTotal(Math.max(newTotal, 1))
      bar.update(done, { status })
    },
    stop: () => bar.stop(),
  }
}

const megabytes = (bytes: number) => (bytes / 1e6).toFixed(1)

/** A bar driven by a dataset import's progress events: by bytes when their total is known, else by items. */
export function importProgressBar(
  label: string,
  enabled = process.stderr.isTTY,
): {
  update(event: ImportProgress): void
  stop(): void
} {
  let bar: ProgressBar | null = null
  return {
    update(event) {
      const byBytes = event.bytesTotal !== null
      const total = (byBytes ? event.bytesTotal : event.itemsTotal) ?? 0
      const rate =
        event.itemsDone > 0
          ? `${Math.round(event.itemsPerSecond)} items/s`
          : `${megabytes(event.bytesPerSecond)} MB/s`
      const status = `${event.phase} · ${event.itemsDone} items · ${megabytes(event.bytesDone)} MB · ${rate}`
      bar ??= progressBar(label, total, enabled)
      bar.update(byBytes ? event.bytesDone : event.itemsDone, status, total)
    },
    stop() {
      bar?.stop()
    },
  }
}
