import type { CAC } from 'cac'
import type { BackendReport } from '../../../shared/backend'
import { requestedBackend } from '../../backend/backend'
import { launchWorkerProcess } from '../../training/worker-client'
import { numberOption } from '../args'
import { CliError } from '../errors'
import { progressBar } from '../progress'

export function formatBackend(report: BackendReport): string {
  const lines = [`backend: ${report.backend} (tfjs ${report.tfjsVersion})`, `why:     ${report.reason}`]
  if (report.adapter) {
    const a = report.adapter
    lines.push(
      `adapter: ${a.description || a.device} [vendor ${a.vendor || '?'}, architecture ${a.architecture || '?'}${
        a.isSoftware ? ', software' : ''
      }]`,
    )
  } else if (report.requested === 'wasm' || report.requested === 'cpu') {
    lines.push(`adapter: not looked for (R2B_BACKEND=${report.requested})`)
  } else lines.push('adapter: none (no WebGPU adapter found)')
  if (report.slow)
    lines.push('note:    this backend runs on the CPU: use small presets, or a machine with a GPU')
  return lines.join('\n')
}

/** `check`: which backend the worker picks and why, then a few training steps of a small network. */
export function registerCheck(cli: CAC): void {
  cli
    .command('check', 'Show the training backend and train a small network for a few steps')
    .option('--steps <n>', 'Training steps', { default: 20 })
    .option('--batch <n>', 'Batch size', { default: 32 })
    .option('--json', 'Print the result as JSON')
    .action(async (options: { steps: number; batch: number; json?: boolean }) => {
      const steps = numberOption(options.steps, '--steps', { integer: true, min: 1, max: 10_000 }) ?? 20
      const batchSize = numberOption(options.batch, '--batch', { integer: true, min: 1, max: 1024 }) ?? 32
      try {
        requestedBackend() // a bad R2B_BACKEND fails here, before a worker starts
      } catch (error) {
        throw new CliError((error as Error).message)
      }
      const worker = launchWorkerProcess()
      try {
        const { backend } = await worker.waitFor('ready')
        if (!options.json) process.stdout.write(`${formatBackend(backend)}\n`)
        const bar = options.json ? null : progressBar('training', steps)
        const off = worker.on((event) => {
          if (event.type === 'check-step')
            bar?.update(event.step, `loss ${event.loss.toFixed(3)} · ${event.stepMs.toFixed(0)} ms/step`)
        })
        worker.send({ type: 'check', steps, batchSize })
        const result = await worker.waitFor('check-done')
        off()
        bar?.stop()
        if (options.json) {
          const { type: _type, ...figures } = result
          process.stdout.write(`${JSON.stringify({ backend, ...figures })}\n`)
        } else {
          process.stdout.write(
            `loss ${result.firstLoss.toFixed(3)} → ${result.lastLoss.toFixed(3)} over ${steps} steps; ` +
              `${result.meanStepMs.toFixed(1)} ms/step, ${result.imagesPerSecond.toFixed(0)} images/s (batch ${batchSize})\n`,
          )
        }
      } catch (error) {
        throw new CliError(error instanceof Error ? error.message : String(error))
      } finally {
        await worker.shutdown()
      }
    })
}
