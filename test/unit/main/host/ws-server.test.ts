import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { WorkbenchHost } from '../../../../src/main/host/workbench-host'
import { startWsServer, type WsServerHandle } from '../../../../src/main/host/ws-server'
import { launchWorkerProcess } from '../../../../src/main/training/worker-client'

let server: WsServerHandle
let host: WorkbenchHost
let root: string

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'r2b-ui-'))
  mkdirSync(join(root, 'ui'))
  writeFileSync(join(root, 'ui', 'index.html'), '<!doctype html><title>ui</title>')
  writeFileSync(join(root, 'secret.txt'), 'outside the UI folder')
  host = new WorkbenchHost({
    appVersion: '9.9.9',
    versions: {},
    startWorker: () => launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'cpu' }, quiet: true }),
  })
  server = await startWsServer(host, { rendererDir: join(root, 'ui') })
})

afterAll(async () => {
  await server.close()
  await host.stop()
})

function open(path: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, { headers })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)))
    ws.once('error', reject)
  })
}

function request(ws: WebSocket, frame: unknown): Promise<unknown> {
  return new Promise((resolve) => {
    ws.once('message', (data) => resolve(JSON.parse(String(data))))
    ws.send(JSON.stringify(frame))
  })
}

describe('the WebSocket transport', () => {
  it('listens on 127.0.0.1 only and prints a URL with a random token', () => {
    expect(server.url).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}/\\?token=[\\w-]{32}$`))
  })

  it('refuses connections without the token, with a wrong token, or from another origin', async () => {
    await expect(open('/api')).rejects.toThrow('HTTP 403')
    await expect(open('/api?token=wrong')).rejects.toThrow('HTTP 403')
    await expect(open(`/api?token=${server.token}`, { Origin: 'https://evil.example' })).rejects.toThrow(
      'HTTP 403',
    )
  })

  it('answers API calls, and errors for unknown methods and bad arguments', async () => {
    const ws = await open(`/api?token=${server.token}`, { Origin: `http://127.0.0.1:${server.port}` })
    await expect(request(ws, { id: 1, method: 'about', args: [] })).resolves.toMatchObject({
      id: 1,
      result: { appVersion: '9.9.9' },
    })
    await expect(request(ws, { id: 2, method: 'nope', args: [] })).resolves.toEqual({
      id: 2,
      error: 'unknown method "nope"',
    })
    await expect(request(ws, { id: 3, method: 'about', args: [1] })).resolves.toMatchObject({
      id: 3,
      error: expect.stringMatching(/invalid arguments/),
    })
    ws.close()
  })

  it('closes the socket on a frame that is not a request', async () => {
    const ws = await open(`/api?token=${server.token}`)
    const closed = new Promise<[number, string]>((resolve) =>
      ws.once('close', (code, reason) => resolve([code, String(reason)])),
    )
    ws.send('{not json')
    const [code, reason] = await closed
    expect(code).toBe(1008)
    expect(reason).toMatch(/invalid request/)
  })

  it('serves the UI files and nothing outside their folder', async () => {
    const base = `http://127.0.0.1:${server.port}`
    expect((await fetch(`${base}/`)).status).toBe(200)
    expect(await (await fetch(`${base}/index.html`)).text()).toContain('<title>ui</title>')
    expect((await fetch(`${base}/..%2fsecret.txt`)).status).toBe(403)
    expect((await fetch(`${base}/missing.js`)).status).toBe(404)
    expect((await fetch(`${base}/`, { method: 'POST' })).status).toBe(405)
  })
})
