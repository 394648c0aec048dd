/**
 * Ctrl+C (and SIGTERM) as presses. A terminal sends SIGINT to the whole foreground process group, and tsx
 * (behind `npm run r2b`) relays it to its child once more when the child is slow to acknowledge it: signals
 * closer together than PRESS_MS are one press. Handlers stay installed for the whole task, so no press can
 * fall through to Node's default (an immediate exit that skips clean-up).
 */
const PRESS_MS = 750

export function onInterrupt(handler: (press: number) => void): () => void {
  let presses = 0
  let last = -Infinity
  const listener = () => {
    const now = performance.now()
    if (now - last < PRESS_MS) return
    last = now
    handler(++presses)
  }
  process.on('SIGINT', listener)
  process.on('SIGTERM', listener)
  return () => {
    process.off('SIGINT', listener)
    process.off('SIGTERM', listener)
  }
}
