import { SingleBar, Presets } from 'cli-progress'

/** A progress bar on stderr (stdout stays clean for --json), with ETA and a free-form status field. */
export function progressBar(
  label: string,
  total: number,
  enabled = process.stderr.isTTY,
): {
  update(done: number, status?: string): void
  stop(): void
} {
  if (!enabled) {
    // Not a terminal (CI, pipes): one line per tenth of the work instead of redraws.
    let lastTenth = -1
    return {
      update(done, status = '') {
        const tenth = Math.floor((done / total) * 10)
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
  bar.start(total, 0, { status: '' })
  return {
    update: (done, status = '') => bar.update(done, { status }),
    stop: () => bar.stop(),
  }
}
