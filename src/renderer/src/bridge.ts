import type { WorkbenchApi } from '../../shared/api'
import { validatedApi, type RawTransport } from '../../shared/api-client'
import { connectWebSocketApi, type ConnectionHooks } from './ws-client'

interface Scope {
  workbenchTransport?: RawTransport
  location?: { host: string; search: string; protocol: string }
}

/**
 * The WorkbenchApi this renderer talks to: over the preload's IPC transport (`window.workbenchTransport`)
 * in the desktop app, else over the WebSocket of the headless host that served this page, authenticated by
 * the token in the page URL. Either way every answer is checked against the API's schemas. Views never
 * reach for a transport themselves: they go through the store.
 */
export function findWorkbenchApi(
  scope: Scope = window,
  connect: (url: string, hooks?: ConnectionHooks) => WorkbenchApi = connectWebSocketApi,
  hooks: ConnectionHooks = {},
): WorkbenchApi | null {
  if (scope.workbenchTransport)
    return validatedApi(scope.workbenchTransport, (problem) => console.error(problem))
  const token = scope.location ? new URLSearchParams(scope.location.search).get('token') : null
  if (!token || !scope.location || scope.location.protocol !== 'http:') return null
  return connect(`ws://${scope.location.host}/api?token=${encodeURIComponent(token)}`, hooks)
}
