import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { SCHEMA_DIR, schemaFiles } from '../../../scripts/schemas'

describe('the run format’s JSON Schemas (docs/schemas)', () => {
  it('are the ones the zod schemas generate: run `npm run schemas` after changing a schema', () => {
    const expected = schemaFiles()
    expect(readdirSync(SCHEMA_DIR).sort()).toEqual(Object.keys(expected).sort())
    for (const [name, text] of Object.entries(expected)) {
      expect(readFileSync(join(SCHEMA_DIR, name), 'utf8'), `${name} is stale: run \`npm run schemas\``).toBe(
        text,
      )
    }
  })
})
