import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** Debian's Chromium (installed by scripts/setup.sh), or R2B_CHROMIUM. */
export function chromiumPath(): string {
  const path = process.env.R2B_CHROMIUM ?? '/usr/bin/chromium'
  if (!existsSync(path)) throw new Error(`no Chromium at ${path}: run \`npm run setup\` or set R2B_CHROMIUM`)
  return path
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    // --no-sandbox: tests run as root in CI; the closed network makes Chromium's background fetches fail loudly.
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  })
}
