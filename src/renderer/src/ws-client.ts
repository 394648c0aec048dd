import { WsServerMessage, type WorkbenchApi } from '../../shared/api'
import { validatedApi } from '../../shared/api-client'
import { firstIssue } from '../../shared/errors'

/**
 * WorkbenchApi over the local WebSocket of `npm run r2b -- serve`: the same interface the preload gives the
 * desktop app, so nothing above this file knows which transport it has. Frames are checked as they arrive;
 * results and events are checked against the API's schemas by validatedApi.
 */
export interface ConnectionHooks {
  onOpen?(): void
  /** The socket closed; `beforeOpen` when it never opened (the server refused it, or is not there). */
  onClose?(closed: { beforeOpen: boolean; reason: string }): void
}

export function connectWebSocketApi(url: string, hooks: ConnectionHooks = {}): WorkbenchApi {
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  const listeners = new Set<(event: unknown) => void>()
  const queue: string[] = []
  let nextId = 1
  let closedReason: string | null = null
  let opened = false

  const socket = new WebSocket(url)
  socket.addEventListener('open', () => {
    opened = true
    hooks.onOpen?.()
    for (const frame of queue.splice(0)) socket.send(frame)
  })
  socket.addEventListener('message', (message) => {
    let frame: unknown
    try {
      frame = JSON.parse(String(message.data))
    } catch {
      return console.error('the workbench sent a frame that is not JSON; ignored')
    }
    const parsed = WsServerMessage.safeParse(frame)
    if (!parsed.success)
      return console.error(`the workbench sent an unexpected frame (${firstIssue(parsed.error)})`)
    const data = parsed.data
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
    hooks.onClose?.({ beforeOpen: !opened, reason: event.reason })
  })

  return validatedApi({
    call: (method, args) =>
      new Promise<unknown>((resolve, reject) => {
        if (closedReason) return reject(new Error(closedReason))
        const id = nextId++
        pending.set(id, { resolve, reject })
        const frame = JSON.stringify({ id, method, args })
        if (socket.readyState === WebSocket.OPEN) socket.send(frame)
        else queue.push(frame)
      }),
    onEvent: (listener) => {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  })
}
