/**
 * Data-parallel training as a user meets it: the PyTorch engine under real torchrun, in 2 CPU processes
 * (gloo). `train --nproc 2` trains and says so in run.json; a killed process leaves the run interrupted with a
 * message naming it, and `resume` completes it with every epoch once; `launch` writes a job folder whose
 * torchrun script (and, where scripts/test.sh set up Slurm, whose job.slurm under real `sbatch`) trains the
 * run that this store follows. Needs the .venv of scripts/setup-python.sh (npm test makes it).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import type { LogLine, RunMeta } from '../../src/shared/runs'
import type { WorkbenchEvent } from '../../src/shared/api'
import { WorkbenchHost } from '../../src/main/host/workbench-host'
import { RunStore } from '../../src/main/runs/run-store'
import { launchWorkerProcess } from '../../src/main/training/worker-client'
import { runCli } from '../support/cli'
import { tinySettings } from '../support/tiny'

const root = join(import.meta.dirname, '../..')
const python = join(root, '.venv', 'bin', 'python')
let home: string

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCli(home, args, env)

/** Waits for `ready()` to hold, checking every 100 ms, for at most `seconds`. */
async function until(ready: () => boolean, seconds: number, what: string): Promise<void> {
  for (let i = 0; i < seconds * 10; i++) {
    if (ready()) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`gave up waiting for ${what}`)
}

const set = (steps: number, epochs = 2) =>
  tinySettings({ stages: 2, epochs, steps }).flatMap((s) => ['--set', s])

const readRun = (dir: string) => JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')) as RunMeta

function epochsOf(dir: string): Record<string, number[]> {
  const epochs: Record<string, number[]> = {}
  for (const line of readFileSync(join(dir, 'events.jsonl'), 'utf8').trim().split('\n')) {
    const l = JSON.parse(line) as LogLine
    if (l.kind === 'epoch') (epochs[l.stage] ??= []).push(l.epoch)
  }
  return epochs
}

/** The pid of this test's training process of rank `rank` (its environment names the rank and this home). */
function rankPid(rank: number): number | null {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let environ: string[]
    try {
      environ = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0')
    } catch {
      continue
    }
    if (environ.includes(`RANK=${rank}`) && environ.includes(`R2B_HOME=${home}`)) {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      if (cmdline.includes('r2b_torch') && !cmdline.includes('torch.distributed.run')) return Number(entry)
    }
  }
  return null
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'r2b-ddp-'))
  expect((await cli(['datasets', '--json']).done).code).toBe(0)
})

describe('data-parallel training on the PyTorch engine (torchrun, 2 CPU processes)', () => {
  it('train --nproc 2 --sync-batchnorm trains the run, records how it was distributed, and the UI host follows it live', async () => {
    // The workbench's host (what `serve` and the app run) on the same data home, as a user watching the UI.
    const host = new WorkbenchHost({
      appVersion: 'test',
      versions: { node: process.versions.node },
      home,
      startWorker: () => launchWorkerProcess({ env: { ...process.env, R2B_BACKEND: 'wasm' }, quiet: true }),
    })
    const events: WorkbenchEvent[] = []
    host.api.onEvent((e) => events.push(e))
    host.start()
    const { code, stdout, stderr } = await cli([
      'train',
      '--engine',
      'torch',
      '--nproc',
      '2',
      '--sync-batchnorm',
      '--pipeline',
      'sb',
      '--json',
      ...set(3),
    ]).done
    expect(code, stderr).toBe(0)
    const runId = String((JSON.parse(stdout.split('\n')[0]!) as { runId: string }).runId)
    const dir = new RunStore(home).dir(runId)
    const run = readRun(dir)
    expect(run.status).toBe('finished')
    expect(run.environment.distributed).toEqual({
      worldSize: 2,
      nodes: 1,
      backend: 'gloo',
      perProcessBatch: 8,
      syncBatchNorm: true,
    })
    expect(epochsOf(dir)).toEqual({ 'sb-ban': [0, 1], 'sb-bnn': [0, 1] })
    const shown = await cli(['show', runId]).done
    expect(shown.stdout).toMatch(/parallel .*2 processes/)
    try {
      // The host found the run by the training lock, streamed what was appended, and saw it end.
      const ofRun = (e: WorkbenchEvent) =>
        ('runId' in e && e.runId === runId) || (e.type === 'run' && e.run.id === runId)
      await until(
        () => events.some((e) => e.type === 'run' && e.run.id === runId && e.run.status === 'finished'),
        30,
        'the host to see the run finish',
      )
      expect(events.filter((e) => ofRun(e) && e.type === 'record').length).toBeGreaterThan(0)
      const seen = events.findLast((e) => e.type === 'run' && e.run.id === runId)
      expect(seen?.type === 'run' && seen.run.environment.distributed?.worldSize).toBe(2)
    } finally {
      await host.stop()
    }
  })

  it('refuses a process count that does not divide the batch, before creating a run', async () => {
    const { code, stderr } = await cli(['train', '--engine', 'torch', '--nproc', '3', ...set(2)]).done
    expect(code).toBe(1)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toMatch(/batch of 16, which 3 processes cannot share evenly/)
  })

  it('a killed process leaves the run interrupted, naming it; resume completes it with every epoch once', async () => {
    const training = cli([
      'train',
      '--engine',
      'torch',
      '--nproc',
      '2',
      '--pipeline',
      'sb',
      '--json',
      ...set(40, 3),
    ])
    let runId = ''
    await until(
      () => {
        runId = /"runId":"([^"]+)"/.exec(training.stdout())?.[1] ?? ''
        return runId !== ''
      },
      120,
      'the run to be created',
    )
    const dir = new RunStore(home).dir(runId)
    await until(
      () => existsSync(join(dir, 'checkpoints', 'sb-ban', 'e1', 'manifest.json')),
      300,
      'the first checkpoint',
    )
    const pid = rankPid(1)
    expect(pid, 'the rank-1 process').not.toBeNull()
    process.kill(pid!, 'SIGKILL')
    const ended = await training.done
    expect(ended.code).not.toBe(0)
    const run = readRun(dir)
    expect(run.status).toBe('interrupted')
    // How it ended (the signal) is told when rank 0 reads the peer's status before torchrun reaps it; on a
    // loaded machine torchrun may reap it first, and the message still names the process.
    expect(run.error).toMatch(
      /process 1 of 2 ended( \(killed by signal 9\))?; resume continues from the last checkpoint/,
    )
    expect(ended.stderr).toMatch(/process 1 of 2 ended/)

    const resumed = await cli(['resume', runId]).done
    expect(resumed.code, resumed.stderr).toBe(0)
    expect(readRun(dir).status).toBe('finished')
    expect(epochsOf(dir)).toEqual({ 'sb-ban': [0, 1, 2], 'sb-bnn': [0, 1, 2] })
    // It resumed as it had trained: in 2 processes.
    expect(readRun(dir).environment.distributed?.worldSize).toBe(2)
  })

  it('launch writes a job folder whose torchrun script (under sbatch where Slurm is set up) trains the run this store follows', async () => {
    const port = await freePort()
    const launched = await cli([
      'launch',
      '--nodes',
      '1',
      '--cpu-processes-per-node',
      '2',
      '--cpus-per-process',
      '1',
      '--slurm',
      '--port',
      String(port),
      '--pipeline',
      'sb',
      ...set(3),
    ]).done
    expect(launched.code, launched.stderr).toBe(0)
    const jobs = readdirSync(join(home, 'jobs'))
    expect(jobs).toHaveLength(1)
    const jobDir = join(home, 'jobs', jobs[0]!)
    const runId = jobs[0]!
    execFileSync('bash', ['-n', join(jobDir, 'job.slurm')])
    const env = { ...process.env, R2B_PYTHON: python }
    if (process.env.R2B_TEST_SLURM === '1') {
      // A real Slurm cluster (scripts/setup-slurm.sh): sbatch --wait returns when the job has ended.
      try {
        execFileSync('sbatch', ['--wait', join(jobDir, 'job.slurm')], {
          env,
          stdio: 'pipe',
          timeout: 600_000,
        })
      } catch (error) {
        const logs = readdirSync(join(jobDir, 'logs')).map((f) =>
          readFileSync(join(jobDir, 'logs', f), 'utf8'),
        )
        throw new Error(`the Slurm job failed: ${String(error)}\n${logs.join('\n')}`)
      }
    } else {
      execFileSync('sh', [join(jobDir, 'torchrun.sh')], {
        env: { ...env, R2B_RDZV: `127.0.0.1:${port}` },
        stdio: 'pipe',
        timeout: 600_000,
      })
    }
    const runs = JSON.parse((await cli(['runs', '--json']).done).stdout) as {
      runId: string
      status: string
    }[]
    expect(runs.find((r) => r.runId === runId)).toMatchObject({ status: 'finished' })
    const shown = await cli(['show', runId]).done
    expect(shown.stdout).toMatch(/parallel .*2 processes/)
  })
})
