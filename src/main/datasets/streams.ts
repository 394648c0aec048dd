import { createReadStream } from 'node:fs'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { DatasetError } from './errors'

/**
 * Streams a file (inflating it when gzipped) into `sink`; `onRaw` sees the bytes as stored on disk (for
 * hashing and progress). zlib failures become a one-line DatasetError naming the file.
 */
export async function streamFile(
  file: string,
  gzipped: boolean,
  onRaw: (chunk: Buffer) => void,
  sink: (chunks: AsyncIterable<Buffer>) => Promise<void>,
): Promise<void> {
  const tap = async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      onRaw(chunk)
      yield chunk
    }
  }
  const source = createReadStream(file, { highWaterMark: 1 << 20 })
  try {
    if (gzipped) await pipeline(source, tap, createGunzip(), sink)
    else await pipeline(source, tap, sink)
  } catch (error) {
    const code = (error as { code?: string }).code
    if (code === 'Z_BUF_ERROR' || code === 'Z_DATA_ERROR') {
      throw new DatasetError(`${file}: corrupt or truncated gzip data (${(error as Error).message})`)
    }
    throw error
  }
}
