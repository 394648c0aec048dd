/**
 * `ablation`: rows × downsample × seeds trained as ordinary runs under one group, the table printed in the
 * paper's layout with mean ± std over seeds, and a second run of the same command training nothing again.
 */
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { AblationTable } from '../../src/shared/ablation'
import { runCli } from '../support/cli'
import { tinyBudget } from '../support/tiny'

let home: string

const r2b = (args: string[]) => runCli(home, args).done

// Every row gets these same settings, whatever its number of stages.
const set = tinyBudget({ epochs: 1, steps: 3 }).flatMap((s) => ['--set', s])
const args = ['ablation', '--rows', 'sb,r2b', '--downsample', 'real', '--seeds', '2', '--json', ...set]

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-ablation-'))
})

describe('ablation', () => {
  it('trains every cell as a run, prints the table with mean ± std over seeds, and writes its report', async () => {
    const { code, stdout, stderr } = await r2b(args)
    expect(code, stderr).toBe(0)
    const table = JSON.parse(stdout) as AblationTable & { report: string }
    expect(table.rows.map((r) => r.name)).toEqual(['Strong baseline (SB)', 'Real-to-Bin'])
    for (const row of table.rows) {
      const cell = row.cells.real!
      expect(cell.finished).toBe(2)
      for (const stage of [cell.s1, cell.s2]) {
        expect(stage.top1).toMatchObject({ n: 2, mean: expect.any(Number), std: expect.any(Number) })
        expect(stage.top1!.mean).toBeGreaterThanOrEqual(0)
      }
      // Not the paper's preset: no paper figures beside the measured ones.
      expect(cell.paper).toBeNull()
    }
    expect(table.pending).toEqual([])
    expect(stderr.match(/ablation: \S+ \(run /g)).toHaveLength(4)
    expect(readFileSync(table.report, 'utf8')).toContain('Real-to-Bin')
  })

  it('run again, trains nothing that finished, and extends the group with new seeds only', async () => {
    const again = await r2b(args)
    expect(again.code).toBe(0)
    expect(again.stderr).not.toMatch(/ablation: \S+ \(run /)
    const more = await r2b(args.map((a) => (a === '2' ? '3' : a)))
    expect(more.code, more.stderr).toBe(0)
    expect(more.stderr.match(/ablation: (\S+) \(run /g)).toEqual([
      expect.stringContaining('sb/real/3'),
      expect.stringContaining('r2b/real/3'),
    ])
    const table = JSON.parse(more.stdout) as AblationTable
    expect(table.rows.every((r) => r.cells.real?.s2.top1?.n === 3)).toBe(true)
    expect(existsSync(join(home, 'ablations'))).toBe(true)
  })

  it('takes seeds from --first-seed and adds them to the group, keeping its other cells', async () => {
    const file = join(home, 'ablations', 'fashion-mnist-ablation-small-tfjs.json')
    const before = JSON.parse(readFileSync(file, 'utf8')) as { runs: Record<string, string> }
    const more = await r2b([...args.map((a) => (a === '2' ? '1' : a)), '--first-seed', '4'])
    expect(more.code, more.stderr).toBe(0)
    expect(more.stderr.match(/ablation: (\S+) \(run /g)).toEqual([
      expect.stringContaining('sb/real/4'),
      expect.stringContaining('r2b/real/4'),
    ])
    const after = JSON.parse(readFileSync(file, 'utf8')) as { seeds: number[]; runs: Record<string, string> }
    expect(after.seeds).toEqual([1, 2, 3, 4])
    expect(after.runs).toMatchObject(before.runs)
    const table = JSON.parse(more.stdout) as AblationTable
    expect(table.rows.every((r) => r.cells.real?.s2.top1?.n === 4)).toBe(true)
  })

  it('refuses to mix budgets in one group, in one line', async () => {
    const { code, stderr } = await r2b([...args, '--set', 'model.width=0.125'])
    expect(code).toBe(1)
    expect(stderr.trim()).toMatch(
      /^error: ablation group .* was run with other overrides .*name another group with --group$/,
    )
  })
})
