import { UserError } from '../../shared/errors'

/**
 * An import or store error the user can act on: its message names the file and what is wrong, and fits on
 * one line. Anything else escaping the datasets code is a bug.
 */
export class DatasetError extends UserError {
  override name = 'DatasetError'
}

/** The import's AbortSignal fired; the store is unchanged. */
export class ImportCancelledError extends DatasetError {
  override name = 'ImportCancelledError'
  constructor() {
    super('import cancelled: nothing was stored')
  }
}

export function throwIfCancelled(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new ImportCancelledError()
}

/** The message of an fs error without Node's "ENOENT: ..., open '<path>'" tail, for one-line reports. */
export function fsReason(error: unknown): string {
  const code = (error as { code?: unknown }).code
  switch (code) {
    case 'ENOENT':
      return 'does not exist'
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read (permission denied)'
    case 'EISDIR':
      return 'is a directory, not a file'
    case 'ENOTDIR':
      return 'is not a directory'
    default:
      return error instanceof Error ? error.message : String(error)
  }
}
