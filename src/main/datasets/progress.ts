import type { ImportPhase, ImportProgress } from '../../shared/datasets'

export type ProgressListener = (event: ImportProgress) => void

/** Counts items and bytes and reports them at most every `intervalMs`, with rates and an ETA. */
export class ProgressTracker {
  private started = performance.now()
  private lastEmit = -Infinity
  private phase: ImportPhase = 'scanning'
  itemsDone = 0
  bytesDone = 0
  itemsTotal: number | null = null
  bytesTotal: number | null = null

  constructor(
    private readonly listener: ProgressListener | undefined,
    private readonly intervalMs = 100,
  ) {}

  setPhase(phase: ImportPhase): void {
    this.phase = phase
    this.emit(true)
  }

  /** Starts counting afresh, e.g. after a scanning pass whose own counts mean nothing to the ETA. */
  restart(phase: ImportPhase): void {
    this.started = performance.now()
    this.itemsDone = 0
    this.bytesDone = 0
    this.setPhase(phase)
  }

  setTotals(items: number | null, bytes: number | null): void {
    this.itemsTotal = items
    this.bytesTotal = bytes
  }

  add(items: number, bytes: number): void {
    this.itemsDone += items
    this.bytesDone += bytes
    this.emit(false)
  }

  snapshot(): ImportProgress {
    const seconds = Math.max((performance.now() - this.started) / 1000, 1e-3)
    const itemsPerSecond = this.itemsDone / seconds
    const bytesPerSecond = this.bytesDone / seconds
    let etaSeconds: number | null = null
    if (this.bytesTotal !== null && bytesPerSecond > 0) {
      etaSeconds = Math.max(0, this.bytesTotal - this.bytesDone) / bytesPerSecond
    } else if (this.itemsTotal !== null && itemsPerSecond > 0) {
      etaSeconds = Math.max(0, this.itemsTotal - this.itemsDone) / itemsPerSecond
    }
    return {
      phase: this.phase,
      itemsDone: this.itemsDone,
      itemsTotal: this.itemsTotal,
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
      itemsPerSecond,
      bytesPerSecond,
      etaSeconds,
    }
  }

  emit(force: boolean): void {
    if (!this.listener) return
    const now = performance.now()
    if (!force && now - this.lastEmit < this.intervalMs) return
    this.lastEmit = now
    this.listener(this.snapshot())
  }
}
