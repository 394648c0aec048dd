import type { z } from 'zod'

/**
 * An error whose message is complete and actionable: it names what is wrong and what to do, on one line.
 * Every error meant for users extends it (dataset, config, run store, training, deploy, command line), so
 * the CLI and the UI show its message alone; anything else reaching them is a bug, shown as one line too.
 */
export class UserError extends Error {
  override name = 'UserError'
}

/** The first line of an error's message (zod and Node errors can span many), for one-line reports. */
export function oneLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error)
  return (
    text.split('\n').find((line) => line.trim() !== '') ?? (error instanceof Error ? error.name : 'error')
  )
}

/** The first problem zod found, as `field: message`, for one-line errors that name the field. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]
  return issue ? `${issue.path.length ? issue.path.join('.') : 'root'}: ${issue.message}` : 'invalid'
}
