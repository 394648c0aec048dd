import { z } from 'zod'
import { BackendReport } from './backend'
import type { ApiMethod } from './api-methods'

/**
 * WorkbenchApi: the one contract between the UI and the backend host. Both transports (Electron IPC through
 * the preload, and the local WebSocket of `serve`) carry exactly these calls and events; the host validates
 * every call's arguments with these schemas before acting.
 */

export const AboutInfo = z.object({
  appVersion: z.string(),
  /** Versions of the runtime pieces: node, tfjs, and electron/chrome/v8 inside the app. */
  versions: z.record(z.string(), z.string()),
  dataHome: z.string(),
  /** Which backend the training worker selected and why; null until the worker has started. */
  backend: BackendReport.nullable(),
  /** Set when the worker failed to start or select a backend. */
  backendError: z.string().nullable(),
})
export type AboutInfo = z.infer<typeof AboutInfo>

/** Argument tuples and result of every request method. */
export const apiSchemas = {
  about: { args: z.tuple([]), result: AboutInfo },
} satisfies Record<ApiMethod, { args: z.ZodTuple; result: z.ZodType }>

export const WorkbenchEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('backend'), backend: BackendReport.nullable(), error: z.string().nullable() }),
])
export type WorkbenchEvent = z.infer<typeof WorkbenchEvent>

type Args<M extends ApiMethod> = z.infer<(typeof apiSchemas)[M]['args']>
type Result<M extends ApiMethod> = z.infer<(typeof apiSchemas)[M]['result']>

export type WorkbenchApi = { [M in ApiMethod]: (...args: Args<M>) => Promise<Result<M>> } & {
  /** Subscribes to the host's event stream; returns the unsubscribe function. */
  onEvent(listener: (event: WorkbenchEvent) => void): () => void
}

/** What a transport hands the host: an untrusted method name and argument list. */
export const ApiCall = z.object({ method: z.string(), args: z.array(z.unknown()) })

/** The WebSocket transport's frames: requests carry an id that the response repeats; events have none. */
export const WsRequest = ApiCall.extend({ id: z.number().int().nonnegative() })
export type WsRequest = z.infer<typeof WsRequest>
export const WsServerMessage = z.union([
  z.object({ id: z.number().int(), result: z.unknown() }),
  z.object({ id: z.number().int(), error: z.string() }),
  z.object({ event: WorkbenchEvent }),
])
export type WsServerMessage = z.infer<typeof WsServerMessage>
