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
