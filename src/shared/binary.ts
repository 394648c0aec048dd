/**
 * Binary payloads (attention maps, gates, images) inside JSON: the WebSocket transport carries text, so typed
 * arrays travel as base64 of their little-endian bytes. Written by hand because src/shared runs in Node, the
 * sandboxed renderer and the browser alike (no Buffer, and btoa would need a binary string per call).
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const LOOKUP = new Int16Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) LOOKUP[ALPHABET.charCodeAt(i)] = i

export function bytesToBase64(bytes: Uint8Array): string {
  const parts: string[] = []
  // Chunks keep String.fromCharCode's argument list small.
  const chunk = 3 * 4096
  for (let start = 0; start < bytes.length; start += chunk) {
    const end = Math.min(start + chunk, bytes.length)
    const codes: number[] = []
    for (let i = start; i < end; i += 3) {
      const a = bytes[i] as number
      const b = i + 1 < end ? (bytes[i + 1] as number) : 0
      const c = i + 2 < end ? (bytes[i + 2] as number) : 0
      const triple = (a << 16) | (b << 8) | c
      codes.push(
        ALPHABET.charCodeAt((triple >> 18) & 63),
        ALPHABET.charCodeAt((triple >> 12) & 63),
        i + 1 < end ? ALPHABET.charCodeAt((triple >> 6) & 63) : 61,
        i + 2 < end ? ALPHABET.charCodeAt(triple & 63) : 61,
      )
    }
    parts.push(String.fromCharCode(...codes))
  }
  return parts.join('')
}

export function base64ToBytes(text: string): Uint8Array {
  if (text.length % 4 !== 0) throw new Error('base64 text length is not a multiple of 4')
  const padding = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
  const out = new Uint8Array((text.length / 4) * 3 - padding)
  let o = 0
  for (let i = 0; i < text.length; i += 4) {
    let triple = 0
    for (let k = 0; k < 4; k++) {
      const code = text.charCodeAt(i + k)
      const value = code === 61 ? 0 : code < 128 ? (LOOKUP[code] as number) : -1
      if (value < 0) throw new Error(`invalid base64 character at ${i + k}`)
      triple = (triple << 6) | value
    }
    if (o < out.length) out[o++] = (triple >> 16) & 255
    if (o < out.length) out[o++] = (triple >> 8) & 255
    if (o < out.length) out[o++] = triple & 255
  }
  return out
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

export function encodeFloat32(values: Float32Array): string {
  const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength)
  if (littleEndian) return bytesToBase64(bytes)
  const view = new DataView(new ArrayBuffer(values.byteLength))
  values.forEach((v, i) => view.setFloat32(i * 4, v, true))
  return bytesToBase64(new Uint8Array(view.buffer))
}

export function decodeFloat32(text: string): Float32Array {
  const bytes = base64ToBytes(text)
  if (bytes.length % 4 !== 0) throw new Error('float32 payload is not a multiple of 4 bytes')
  if (littleEndian) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4)
  const view = new DataView(bytes.buffer)
  return Float32Array.from({ length: bytes.length / 4 }, (_, i) => view.getFloat32(i * 4, true))
}

export const encodeUint8 = bytesToBase64
export const decodeUint8 = base64ToBytes
