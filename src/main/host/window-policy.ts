/**
 * The Electron window's security policy as plain data and pure functions, so it is tested without Electron
 * and applied in src/main/index.ts.
 */

/** Content-Security-Policy of the renderer: only the app's own code; styles inline for Plotly. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self' ws://127.0.0.1:*",
  "worker-src 'self' blob:",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

/** BrowserWindow webPreferences: isolation and sandbox on, no Node in the renderer. */
export function secureWebPreferences(preload: string) {
  return {
    preload,
    contextIsolation: true,
    sandbox: true,
    nodeIntegration: false,
    nodeIntegrationInWorker: false,
    nodeIntegrationInSubFrames: false,
    webSecurity: true,
    allowRunningInsecureContent: false,
    webviewTag: false,
    spellcheck: false,
  } as const
}

/**
 * The renderer may only ever show the app itself: a navigation is allowed only to the exact document the
 * window was opened on (a reload), never elsewhere.
 */
export function isAllowedNavigation(target: string, appUrl: string): boolean {
  try {
    const to = new URL(target)
    const app = new URL(appUrl)
    return to.origin === app.origin && to.pathname === app.pathname
  } catch {
    return false
  }
}

/**
 * Whether an IPC call comes from the app's own page: the sending frame must show the app's document. A
 * frame that somehow shows anything else (an injected iframe, a page navigated away) gets no API.
 */
export function isTrustedSender(frameUrl: string | undefined, appUrl: string): boolean {
  return frameUrl !== undefined && isAllowedNavigation(frameUrl, appUrl)
}

/** Links the UI opens (documentation, the paper) go to the system browser, and only over https. */
export function isExternalLink(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:'
  } catch {
    return false
  }
}
