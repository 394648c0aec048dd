import { API_METHODS } from '../../shared/api-methods'
import type { WorkbenchApi, WorkbenchEvent, WsServerMessage } from '../../shared/api'

/**
 * WorkbenchApi over the local WebSocket of `npm run r2b -- serve`: the same interface the preload gives the
 * desktop app, so nothing above this file knows which transport it has.
 */
export function connectWebSocketApi(url: string): WorkbenchApi {
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  const listeners = new Set<(event: WorkbenchEvent) => void>()
  const queue: string[] = []
  let nextId = 1
  let closedReason: string | null = null

  const socket = new WebSocket(url)
  socket.addEventListener('open', () => {
    for (const frame of queue.splice(0)) socket.send(frame)
  })
  socket.addEventListener('message', (message) => {
    const data = JSON.parse(String(message.data)) as WsServerMessage
    if ('event' in data) {
      listeners.forEach((listener) => listener(data.event))
      return
    }
    const call = pending.get(data.id)
    if (!call) return
    pending.delete(data.id)
    if ('error' in data) call.reject(new Error(data.error))
    else call.resolve(data.result)
  })
  socket.addEventListener('close', (event) => {
    closedReason = `the connection to the workbench closed${event.reason ? `: ${event.reason}` : ''}`
    for (const call of pending.values()) call.reject(new Error(closedReason))
    pending.clear()
  })

  const call = (method: string, args: unknown[]) =>
    new Promise<unknown>((resolve, reject) => {
      if (closedReason) return reject(new Error(closedReason))
      const id = nextId++
      pending.set(id, { resolve, reject })
      const frame = JSON.stringify({ id, method, args })
      if (socket.readyState === WebSocket.OPEN) socket.send(frame)
      else queue.push(frame)
    })

  const methods = Object.fromEntries(
    API_METHODS.map((method) => [method, (...args: unknown[]) => call(method, args)]),
  )
  const onEvent: WorkbenchApi['onEvent'] = (listener) => {
    listeners.add(listener)
    return () => listeners.delete(listener)
  }
  // The methods are built from API_METHODS, which src/shared/api.ts checks against the schemas.
  return { ...methods, onEvent } as unknown as WorkbenchApi
}
