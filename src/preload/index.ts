/**
 * The preload: exposes the IPC transport of WorkbenchApi to the renderer as `window.workbenchTransport`:
 * raw calls and events over two channels, and a dropped file's path. It holds no logic; main validates every
 * call, and the renderer validates every answer (src/shared/api-client.ts).
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron'
import { IPC_CALL, IPC_EVENT } from '../shared/api-methods'
import type { RawTransport } from '../shared/api-client'

const transport: RawTransport = {
  call: (method, args) => ipcRenderer.invoke(IPC_CALL, method, args),
  onEvent(listener) {
    const handler = (_event: IpcRendererEvent, payload: unknown) => listener(payload)
    ipcRenderer.on(IPC_EVENT, handler)
    return () => {
      ipcRenderer.removeListener(IPC_EVENT, handler)
    }
  },
  // A dropped file's path, for importing it through main; the renderer itself never sees the file system.
  pathForFile: (file) => webUtils.getPathForFile(file as File),
}

contextBridge.exposeInMainWorld('workbenchTransport', transport)
