/**
 * `serve` under attack: requests any web page (no token) or a misbehaving client can send must end that
 * request or connection only. Each attack runs against a real server process, which must still answer after.
 */
import { mkdtempSync } from 'node:fs'
import { connect as tcpConnect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { connect, startServedProcess, type ServedProcess } from '../support/served'

let served: ServedProcess

// A fresh server per attack: each test proves its own attack harmless.
beforeEach(async () => {
  served = await startServedProcess(mkdtempSync(join(tmpdir(), 'r2b-harden-')))
})

afterEach(async () => {
  await served?.stop()
})

/** Sends raw bytes and resolves with what came back before the server closed (or `waitMs` passed). */
function raw(bytes: string | Buffer, waitMs = 2000): Promise<string> {
  return new Promise((resolve) => {
    const socket = tcpConnect(served.port, '127.0.0.1')
    let answer = ''
    const done = () => {
      socket.destroy()
      resolve(answer)
    }
    socket.on('data', (d) => (answer += String(d)))
    socket.on('close', done)
    socket.on('error', done)
    socket.setTimeout(waitMs, done)
    socket.write(bytes)
  })
}

async function stillAnswers(): Promise<void> {
  expect(served.alive(), served.stderr()).toBe(true)
  const client = await connect(served)
  await expect(client.call('about')).resolves.toMatchObject({ canPickFiles: false })
  client.close()
}

describe('serve survives what any web page or client can send', () => {
  it('answers a malformed percent-escape in the URL with 400, and keeps serving', async () => {
    for (const path of ['/%', '/%E0%A4%A', '/a%ZZ', '/%00']) {
      const answer = await raw(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`)
      expect(answer, path).toMatch(/^HTTP\/1\.1 400/)
    }
    await stillAnswers()
  })

  it('survives unauthenticated WebSocket upgrades whose client resets the connection', async () => {
    const upgrade =
      'GET /api HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
    for (let i = 0; i < 20; i++) {
      await new Promise<void>((resolve) => {
        const socket: Socket = tcpConnect(served.port, '127.0.0.1', () => {
          socket.write(upgrade)
          // A TCP reset right away, while the server writes its 403.
          socket.resetAndDestroy()
          resolve()
        })
        socket.on('error', () => resolve())
      })
    }
    await stillAnswers()
  })

  it('closes only the connection that sends a frame over 1 MiB or a malformed frame', async () => {
    const big = new WebSocket(`ws://127.0.0.1:${served.port}/api?token=${served.token}`)
    await new Promise((resolve, reject) => {
      big.once('open', resolve)
      big.once('error', reject)
    })
    const closed = new Promise<number>((resolve) => big.once('close', resolve))
    big.on('error', () => {})
    big.send('x'.repeat(2 << 20))
    expect(await closed).toBe(1009)

    // A frame with a reserved opcode (0x3), after a valid handshake over a raw socket.
    const handshake =
      `GET /api?token=${served.token} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
      'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'
    const answer = await raw(Buffer.concat([Buffer.from(handshake), Buffer.from([0x83, 0x80, 1, 2, 3, 4])]))
    expect(answer).toMatch(/^HTTP\/1\.1 101/)
    await stillAnswers()
  })

  it('accepts the page opened as localhost as well as 127.0.0.1, and no other origin', async () => {
    const open = (origin: string) =>
      new Promise<string>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${served.port}/api?token=${served.token}`, {
          headers: { Origin: origin },
        })
        ws.once('open', () => {
          ws.close()
          resolve('open')
        })
        ws.once('unexpected-response', (_req, res) => resolve(`HTTP ${res.statusCode}`))
        ws.once('error', () => resolve('error'))
      })
    await expect(open(`http://localhost:${served.port}`)).resolves.toBe('open')
    await expect(open(`http://127.0.0.1:${served.port}`)).resolves.toBe('open')
    await expect(open(`http://localhost:${served.port + 1}`)).resolves.toBe('HTTP 403')
    await expect(open('http://evil.example')).resolves.toBe('HTTP 403')
  })
})
