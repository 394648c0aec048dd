import { z } from 'zod'

/**
 * A name a user gives a run or a dataset: shown in lists, tables and terminals, so one line of printable
 * text. Control characters (a newline, an escape sequence) would break those lines or drive the terminal.
 */
export const DisplayName = z
  .string()
  .trim()
  .min(1, 'a name cannot be empty')
  .max(200, 'a name is at most 200 characters')
  .regex(/^[^\p{Cc}]*$/u, 'a name cannot contain control characters (newlines, tabs, escapes)')
export type DisplayName = z.infer<typeof DisplayName>
