import type { WorkbenchApi } from '../../shared/api'
import { connectWebSocketApi } from './ws-client'

interface Scope {
  workbench?: WorkbenchApi
  location?: { host: string; search: string; protocol: string }
}

/**
 * The WorkbenchApi this renderer talks to: the preload's (`window.workbench`) in the desktop app, else the
 * WebSocket of the headless host that served this page, authenticated by the token in the page URL. Views
 * never reach for a transport themselves: they go through the store.
 */
export function findWorkbenchApi(scope: Scope = window, connect = connectWebSocketApi): WorkbenchApi | null {
  if (scope.workbench) return scope.workbench
  const token = scope.location ? new URLSearchParams(scope.location.search).get('token') : null
  if (!token || !scope.location || scope.location.protocol !== 'http:') return null
  return connect(`ws://${scope.location.host}/api?token=${encodeURIComponent(token)}`)
}
