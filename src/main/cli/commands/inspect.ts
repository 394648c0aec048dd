import { mkdir, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { CAC } from 'cac'
import { attentionFigure, gateFigure } from '../../reports/inspection-figure'
import { RunStore } from '../../runs/run-store'
import { inspectRun } from '../../training/inspect-run'
import { launchWorkerProcess } from '../../training/worker-client'
import { numberOption, textOption } from '../args'
import { CliError } from '../errors'

/** `inspect`: one test image's attention maps (student vs teacher) and gates under a saved checkpoint, as PNG. */
export function registerInspect(cli: CAC): void {
  cli
    .command(
      'inspect <run>',
      "Attention maps and gates of one test image under a run's checkpoint, as PNG heatmaps",
    )
    .option('--image <n>', 'Test image index')
    .option('--stage <name>', 'Stage (default: the last with a checkpoint)')
    .option('--epoch <n>', 'After which epoch of the stage (1 = its first; default: its last checkpoint)')
    .option('--out <dir>', 'Folder for the PNG files (default: inside the run folder)')
    .option('--json', 'Print the result as JSON')
    .action(async (runId: string, options: Record<string, unknown>) => {
      const image = numberOption(options.image, '--image', { integer: true, min: 0 })
      if (image === undefined) throw new CliError('--image <n> is required: the index of a test image')
      const store = new RunStore()
      const worker = launchWorkerProcess()
      try {
        await worker.waitFor('ready')
        const found = await inspectRun(store, worker, {
          run: runId,
          image,
          stage:
            options.stage === undefined
              ? null
              : (textOption('--stage', cli.rawArgs) ?? String(options.stage)),
          epochsCompleted: numberOption(options.epoch, '--epoch', { integer: true, min: 1 }) ?? null,
        })
        const out = resolve(
          options.out === undefined
            ? join(store.dir(runId), 'inspect', `${found.stage}-e${found.epochsCompleted}-image${image}`)
            : String(options.out),
        )
        await mkdir(out, { recursive: true })
        const title = `run ${runId} · stage ${found.stage} after epoch ${found.epochsCompleted} · test image ${image} (${found.image.className})`
        const attentionPng = join(out, 'attention.png')
        const gatesPng = join(out, 'gates.png')
        await writeFile(
          attentionPng,
          await attentionFigure({ title, image: found.image, points: found.result.points }),
        )
        const files = [attentionPng]
        if (found.result.gates.length) {
          await writeFile(gatesPng, await gateFigure(`${title} · gate values`, found.result.gates))
          files.push(gatesPng)
        }
        const logits = Array.from(found.result.logits)
        const top = logits
          .map((v, k) => ({ k, v }))
          .sort((a, b) => b.v - a.v)
          .slice(0, 5)
        const exp = logits.map((v) => Math.exp(v - (top[0]?.v ?? 0)))
        const total = exp.reduce((a, b) => a + b, 0)
        const predictions = top.map(({ k }) => ({
          class: found.classes[k] ?? String(k),
          probability: (exp[k] ?? 0) / total,
        }))
        const distances = found.result.points.map((p) => ({
          point: p.point,
          distance: p.teacher
            ? Math.sqrt(p.student.data.reduce((s, v, i) => s + (v - (p.teacher!.data[i] ?? 0)) ** 2, 0))
            : null,
        }))
        if (options.json) {
          process.stdout.write(
            `${JSON.stringify({ runId, stage: found.stage, epochsCompleted: found.epochsCompleted, teacher: found.teacher, image, label: found.image.className, predictions, attentionDistance: distances, files })}\n`,
          )
          return
        }
        process.stdout.write(
          [
            `image ${image}: ${found.image.className}; stage ${found.stage} after epoch ${found.epochsCompleted}${found.teacher ? `, teacher ${found.teacher}` : ''}`,
            'top-5: ' + predictions.map((p) => `${p.class} ${(100 * p.probability).toFixed(1)}%`).join(', '),
            ...(found.teacher
              ? [
                  '‖student − teacher‖ per transfer point: ' +
                    distances.map((d) => `${d.point} ${d.distance?.toFixed(3)}`).join(', '),
                ]
              : []),
            ...files.map((f) => `wrote ${f}`),
            '',
          ].join('\n'),
        )
      } finally {
        await worker.shutdown()
      }
    })
}
