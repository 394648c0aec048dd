/**
 * The preload: exposes WorkbenchApi to the renderer as `window.workbench`, over two IPC channels. It holds
 * no logic; the main process validates every call.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron'
import { API_METHODS, IPC_CALL, IPC_EVENT } from '../shared/api-methods'
import type { WorkbenchApi, WorkbenchEvent } from '../shared/api'

const methods = Object.fromEntries(
  API_METHODS.map((method) => [method, (...args: unknown[]) => ipcRenderer.invoke(IPC_CALL, method, args)]),
)

const api = {
  ...methods,
  onEvent(listener: (event: WorkbenchEvent) => void) {
    const handler = (_event: IpcRendererEvent, payload: WorkbenchEvent) => listener(payload)
    ipcRenderer.on(IPC_EVENT, handler)
    return () => {
      ipcRenderer.removeListener(IPC_EVENT, handler)
    }
  },
  // A dropped file's path, for importing it through main; the renderer itself never sees the file system.
  pathForFile: (file: File) => webUtils.getPathForFile(file),
} as WorkbenchApi

contextBridge.exposeInMainWorld('workbench', api)
