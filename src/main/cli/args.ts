import { CliError } from './errors'

/**
 * cac hands option values through mri, which turns anything that looks like a number into one: `--name 007`
 * becomes 7 and `--name ""` becomes 0. Options whose value is text (names, ids) are read from the command
 * line as typed instead (`argv`: the arguments cac parsed, its `rawArgs`).
 */
export function textOption(flag: string, argv: readonly string[]): string | undefined {
  let value: string | undefined
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (arg === '--') break
    if (arg === flag) value = argv[i + 1]
    else if (arg.startsWith(`${flag}=`)) value = arg.slice(flag.length + 1)
  }
  return value
}

/**
 * A numeric option, checked: `undefined` when it was not given, else a finite number within the bounds (a
 * whole number when `integer`), or a one-line error that names the flag and what it accepts.
 */
export function numberOption(
  value: unknown,
  flag: string,
  rule: { integer?: boolean; min?: number; max?: number } = {},
): number | undefined {
  if (value === undefined) return undefined
  const n = typeof value === 'number' ? value : Number(String(value).trim() === '' ? Number.NaN : value)
  const { integer = false, min = -Infinity, max = Infinity } = rule
  const ok = Number.isFinite(n) && (!integer || Number.isInteger(n)) && n >= min && n <= max
  if (!ok) {
    const kind = integer ? 'a whole number' : 'a number'
    const range =
      min > -Infinity && max < Infinity
        ? ` from ${min} to ${max}`
        : min > -Infinity
          ? ` of at least ${min}`
          : max < Infinity
            ? ` of at most ${max}`
            : ''
    throw new CliError(`${flag} ${String(value)}: expected ${kind}${range}`)
  }
  return n
}

/** A text option that must be one of a schema's values, or a one-line error listing them. */
export function choiceOption<T extends string>(
  value: unknown,
  what: string,
  schema: { options: readonly T[] },
): T | undefined {
  if (value === undefined) return undefined
  const text = String(value)
  if (!(schema.options as readonly string[]).includes(text))
    throw new CliError(`unknown ${what} "${text}": use one of ${schema.options.join(', ')}`)
  return text as T
}
