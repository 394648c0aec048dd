import type { WorkbenchApi } from '../shared/api'

declare global {
  interface Window {
    /** Set by the Electron preload; absent in a browser, where the WebSocket transport is used. */
    workbench?: WorkbenchApi
  }
}
