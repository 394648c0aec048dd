import { parentPort as threadPort } from 'node:worker_threads'

/** The worker's side of its channel to main, whichever way it was started. */
export interface WorkerPort {
  post(message: unknown): void
  onMessage(handler: (message: unknown) => void): void
  close(): void
}

interface ElectronParentPort {
  postMessage(message: unknown): void
  on(event: 'message', listener: (event: { data: unknown }) => void): void
}

/**
 * Electron's utilityProcess exposes `process.parentPort`; a Node worker thread has worker_threads'
 * `parentPort`; a child process started with an IPC channel has `process.send`. The worker code above this
 * function cannot tell them apart.
 */
export function connectToParent(): WorkerPort {
  // Electron's types declare it on every process; outside a utilityProcess it is undefined.
  const electronPort: ElectronParentPort | undefined = process.parentPort
  if (electronPort) {
    return {
      post: (message) => electronPort.postMessage(message),
      onMessage: (handler) => electronPort.on('message', (event) => handler(event.data)),
      close: () => process.exit(0),
    }
  }
  if (threadPort) {
    const port = threadPort
    return {
      post: (message) => port.postMessage(message),
      onMessage: (handler) => port.on('message', handler),
      close: () => port.close(),
    }
  }
  if (process.send) {
    // Main is gone (killed, crashed): a worker must not train on for nobody.
    process.on('disconnect', () => process.exit(0))
    return {
      post: (message) => process.send?.(message),
      onMessage: (handler) => process.on('message', handler),
      close: () => process.disconnect?.(),
    }
  }
  throw new Error('the training worker must be started by the workbench (no parent channel found)')
}
