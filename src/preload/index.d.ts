import type { RawTransport } from '../shared/api-client'

declare global {
  interface Window {
    /** Set by the Electron preload; absent in a browser, where the WebSocket transport is used. */
    workbenchTransport?: RawTransport
  }
}
