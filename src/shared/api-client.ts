/**
 * The UI's side of WorkbenchApi over any transport: every result is checked against its method's schema and
 * every event against WorkbenchEvent before the UI sees it, so a host of another version (or a damaged
 * message) is a clear error, never a half-read object in a view. Both transports (the preload's IPC and
 * the WebSocket) hand their raw calls and events to this one function.
 */
import { apiSchemas, WorkbenchEvent, type WorkbenchApi } from './api'
import { API_METHODS, type ApiMethod } from './api-methods'
import { firstIssue } from './errors'

export interface RawTransport {
  call(method: ApiMethod, args: unknown[]): Promise<unknown>
  onEvent(listener: (event: unknown) => void): () => void
  pathForFile?(file: Blob): string
}

export function validatedApi(
  raw: RawTransport,
  onInvalidEvent: (problem: string) => void = () => {},
): WorkbenchApi {
  const api: Record<string, unknown> = {}
  for (const method of API_METHODS) {
    api[method] = async (...args: unknown[]) => {
      const result = apiSchemas[method].result.safeParse(await raw.call(method, args))
      if (!result.success)
        throw new Error(
          `the workbench answered ${method} with an unexpected result (${firstIssue(result.error)})`,
        )
      return result.data
    }
  }
  const onEvent: WorkbenchApi['onEvent'] = (listener) =>
    raw.onEvent((event) => {
      const parsed = WorkbenchEvent.safeParse(event)
      if (parsed.success) listener(parsed.data)
      else onInvalidEvent(`an unexpected event from the workbench was ignored (${firstIssue(parsed.error)})`)
    })
  Object.assign(api, { onEvent }, raw.pathForFile ? { pathForFile: raw.pathForFile } : {})
  // Every method of WorkbenchApi was set above from API_METHODS (src/shared/api.ts checks it against the
  // schemas), each returning its schema's parsed result.
  return api as WorkbenchApi
}
