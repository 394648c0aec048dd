/**
 * The Electron shell: window, security policy, IPC wiring and the training worker as a utilityProcess.
 * Everything else is plain-Node code under src/main, exercised by the tests without Electron.
 */
import { join } from 'node:path'
import { app, BrowserWindow, dialog, ipcMain, session, shell, utilityProcess } from 'electron'
import { IPC_CALL, IPC_EVENT } from '../shared/api-methods'
import { WorkbenchHost } from './host/workbench-host'
import {
  CONTENT_SECURITY_POLICY,
  isAllowedNavigation,
  isExternalLink,
  isTrustedSender,
  secureWebPreferences,
} from './host/window-policy'
import { setAppDataHome } from './paths'
import { WorkerClient } from './training/worker-client'
import workerPath from './worker/index?modulePath'

function startUtilityWorker(): WorkerClient {
  const child = utilityProcess.fork(workerPath, [], { serviceName: 'R2B training worker', stdio: 'inherit' })
  return new WorkerClient({
    postMessage: (message) => child.postMessage(message),
    onMessage: (listener) => child.on('message', listener),
    onExit: (listener) => child.on('exit', (code) => listener(code, null)),
    kill: () => child.kill(),
    get pid() {
      return child.pid
    },
  })
}

/** The one document the window shows: the dev server's page in development, the built file otherwise. */
function appUrl(): string {
  return process.env.ELECTRON_RENDERER_URL ?? `file://${join(import.meta.dirname, '../renderer/index.html')}`
}

function createWindow(host: WorkbenchHost): BrowserWindow {
  const window = new BrowserWindow({
    width: 1400,
    height: 900,
    minWidth: 960,
    minHeight: 640,
    show: false,
    title: 'R2B Workbench',
    backgroundColor: '#16181d',
    icon: join(import.meta.dirname, '../../resources/icon.png'),
    webPreferences: secureWebPreferences(join(import.meta.dirname, '../preload/index.cjs')),
  })
  window.once('ready-to-show', () => window.show())
  const unsubscribe = host.api.onEvent((event) => window.webContents.send(IPC_EVENT, event))
  window.on('closed', unsubscribe)

  const url = appUrl()
  window.webContents.on('will-navigate', (event, target) => {
    if (!isAllowedNavigation(target, url)) event.preventDefault()
  })
  // A server redirect is a navigation too (the dev server's pages could answer one).
  window.webContents.on('will-redirect', (event, target) => {
    if (!isAllowedNavigation(target, url)) event.preventDefault()
  })
  window.webContents.setWindowOpenHandler(({ url }) => {
    if (isExternalLink(url)) void shell.openExternal(url)
    return { action: 'deny' }
  })
  void window.loadURL(url)
  return window
}

app.on('web-contents-created', (_event, contents) => {
  contents.on('will-attach-webview', (event) => event.preventDefault())
})

app.whenReady().then(() => {
  setAppDataHome(app.getPath('userData'))
  // The CSP also comes as a header for the dev server's pages; the built page carries it in a meta tag.
  session.defaultSession.webRequest.onHeadersReceived((details, callback) => {
    callback({
      responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] },
    })
  })
  session.defaultSession.setPermissionRequestHandler((_contents, _permission, callback) => callback(false))

  const host = new WorkbenchHost({
    appVersion: app.getVersion(),
    versions: {
      electron: process.versions.electron ?? '',
      chrome: process.versions.chrome ?? '',
      node: process.versions.node,
      v8: process.versions.v8,
    },
    startWorker: startUtilityWorker,
    pickPath: async () => {
      const choice = await dialog.showOpenDialog({
        title: 'Import a dataset (CIFAR archive or folder, IDX files, or a folder of class folders)',
        properties: ['openFile', 'openDirectory'],
      })
      return choice.canceled ? null : (choice.filePaths[0] ?? null)
    },
  })
  host.start()
  ipcMain.handle(IPC_CALL, (event, method: unknown, args: unknown) => {
    if (!isTrustedSender(event.senderFrame?.url, appUrl()))
      throw new Error('refused: the call does not come from the workbench page')
    return host.handleCall({ method, args })
  })

  createWindow(host)
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow(host)
  })
  app.on('will-quit', () => void host.stop())
})

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit()
})
