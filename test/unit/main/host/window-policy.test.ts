import { describe, expect, it } from 'vitest'
import {
  CONTENT_SECURITY_POLICY,
  isAllowedNavigation,
  isExternalLink,
  isTrustedSender,
  secureWebPreferences,
} from '../../../../src/main/host/window-policy'
import { readFileSync } from 'node:fs'

describe('the window security policy', () => {
  it('isolates and sandboxes the renderer without Node', () => {
    expect(secureWebPreferences('/app/preload.cjs')).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      webviewTag: false,
      preload: '/app/preload.cjs',
    })
  })

  it('allows no script but the app own and no eval', () => {
    const directives = Object.fromEntries(
      CONTENT_SECURITY_POLICY.split('; ').map((d) => [d.split(' ')[0], d]),
    )
    expect(directives['script-src']).toBe("script-src 'self'")
    expect(CONTENT_SECURITY_POLICY).not.toMatch(/unsafe-eval/)
    expect(directives['object-src']).toBe("object-src 'none'")
    expect(directives['connect-src']).toBe("connect-src 'self' ws://127.0.0.1:*")
  })

  it('ships the same policy in the page itself (file:// pages get no headers)', () => {
    const html = readFileSync(new URL('../../../../src/renderer/index.html', import.meta.url), 'utf8')
    const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html)?.[1]
    // frame-ancestors is ignored in a meta tag, so the page carries every other directive.
    expect(meta).toBe(CONTENT_SECURITY_POLICY.replace("; frame-ancestors 'none'", ''))
  })

  it('allows navigation only to the app document itself', () => {
    const app = 'file:///opt/r2b/out/renderer/index.html'
    expect(isAllowedNavigation(app, app)).toBe(true)
    expect(isAllowedNavigation('file:///etc/passwd', app)).toBe(false)
    expect(isAllowedNavigation('https://example.com/', app)).toBe(false)
    expect(isAllowedNavigation('http://localhost:5173/', 'http://localhost:5173/')).toBe(true)
    expect(isAllowedNavigation('http://localhost:5174/', 'http://localhost:5173/')).toBe(false)
    expect(isAllowedNavigation('not a url', app)).toBe(false)
  })

  it('answers IPC only from a frame that shows the app document', () => {
    const app = 'file:///opt/r2b/out/renderer/index.html'
    expect(isTrustedSender(app, app)).toBe(true)
    expect(isTrustedSender(`${app}#/runs`, app)).toBe(true)
    expect(isTrustedSender('https://evil.example/', app)).toBe(false)
    expect(isTrustedSender('file:///tmp/other.html', app)).toBe(false)
    expect(isTrustedSender(undefined, app)).toBe(false)
  })

  it('opens only https links, outside the app', () => {
    expect(isExternalLink('https://arxiv.org/abs/2003.11535')).toBe(true)
    expect(isExternalLink('http://example.com')).toBe(false)
    expect(isExternalLink('file:///etc/passwd')).toBe(false)
    expect(isExternalLink('javascript:alert(1)')).toBe(false)
  })
})
