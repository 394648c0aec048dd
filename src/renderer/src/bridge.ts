import type { WorkbenchApi } from '../../shared/api'

/**
 * The WorkbenchApi this renderer talks to. In the desktop app the preload provides it over IPC
 * (`window.workbench`). Views never reach for a transport themselves: they go through the store.
 */
export function findWorkbenchApi(scope: { workbench?: WorkbenchApi } = window): WorkbenchApi | null {
  return scope.workbench ?? null
}
