import { createReadStream, type Stats } from 'node:fs'
import { stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import { DatasetError, fsReason } from './errors'

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

function kindOf(info: Stats): string {
  if (info.isDirectory()) return 'a folder'
  if (info.isFIFO()) return 'a named pipe'
  if (info.isSocket()) return 'a socket'
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device'
  return 'not a regular file'
}

/**
 * The size of a file an importer is about to read, refusing anything but a regular file: a named pipe or a
 * device would block the read forever (or never end), so it is named and refused before it is opened.
 */
export async function regularFileSize(file: string): Promise<number> {
  let info: Stats
  try {
    info = await stat(file)
  } catch (error) {
    throw new DatasetError(`${file}: ${fsReason(error)}`)
  }
  if (!info.isFile()) throw new DatasetError(`${file}: ${kindOf(info)}, not a file: refusing to read it`)
  return info.size
}
