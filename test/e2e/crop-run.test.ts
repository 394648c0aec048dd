/**
 * imagenet-paper's data path as a user meets it on a small image folder: imported larger than the input
 * (`import --size 40`, the input 32), trained on resized crops with flips and colour jitter in the real-weight
 * stage and on the centred window in the binary-weight one, on both engines, then inspected through the
 * centred window. Needs the .venv of scripts/setup-python.sh (npm test makes it).
 */
import { readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { RunMeta } from '../../src/shared/runs'
import { writeImageFolder } from '../fixtures/datasets'
import { runCli } from '../support/cli'
import { tinyBudget } from '../support/tiny'

let home: string
let dataset = ''

const r2b = (args: string[]) => runCli(home, args).done

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-crop-'))
  const source = await mkdtemp(join(tmpdir(), 'r2b-crop-folder-'))
  await writeImageFolder(join(source, 'train'), ['a', 'b', 'c'], [12, 12, 12], { width: 48, height: 40 })
  await writeImageFolder(join(source, 'test'), ['a', 'b', 'c'], [4, 4, 4], { width: 48, height: 40 })
  const imported = await r2b(['import', source, '--size', '40', '--json'])
  expect(imported.code, imported.stderr).toBe(0)
  dataset = (JSON.parse(imported.stdout) as { id: string }).id
})

describe.each(['tfjs', 'torch'])('a cropping run on the %s engine', (engine) => {
  it('trains imagenet-paper on a store larger than its input, and inspects through the centred window', async () => {
    const set = [
      ...tinyBudget({ epochs: 1, steps: 2, batchSize: 6 }),
      'data.inputSize=32',
      'data.testLimit=0',
    ]
    const trained = await r2b([
      'train',
      '--dataset',
      dataset,
      '--preset',
      'imagenet-paper',
      '--pipeline',
      'sb',
      '--engine',
      engine,
      '--json',
      ...set.flatMap((s) => ['--set', s]),
    ])
    expect(trained.code, trained.stderr).toBe(0)
    const last = JSON.parse(trained.stdout.trim().split('\n').at(-1)!) as { runId: string; status: string }
    expect(last.status).toBe('finished')
    const run = JSON.parse(readFileSync(join(home, 'runs', last.runId, 'run.json'), 'utf8')) as RunMeta
    expect(run.config.data).toMatchObject({ inputSize: 32, storedSize: 40 })
    expect(run.config.stages[0]?.augment).toMatchObject({ resizedCropMinArea: 0.08, colorJitter: 0.4 })
    expect(run.stages.every((s) => s.status === 'finished' && s.testTop1 !== null)).toBe(true)
    const inspect = await r2b(['inspect', last.runId, '--image', '1', '--stage', 'sb-bnn', '--json'])
    expect(inspect.code, inspect.stderr).toBe(0)
    expect(JSON.parse(inspect.stdout)).toMatchObject({ stage: 'sb-bnn', image: 1 })
  })
})
