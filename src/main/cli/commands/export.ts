/** `export RUN [--stage bnn] --out FILE`: the bit-packed deployment file of a fully binary stage. */
import type { CAC } from 'cac'
import { measureAgreement } from '../../deploy/agreement'
import { exportRun, type ExportReport } from '../../deploy/export-run'
import { kernelsForBackend } from '../../deploy/kernels'
import { RunStore } from '../../runs/run-store'
import { initBackend, releaseBackend } from '../../backend/backend'
import { CliError } from '../errors'

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`

export function describeExport(r: ExportReport): string {
  return [
    `exported ${r.runId}/${r.stage} (after epoch ${r.epochsCompleted}${r.final ? '' : ', not the stage end'}) to ${r.file}`,
    `  file            ${r.fileBytes} bytes (${kb(r.fileBytes)})`,
    `  minimum         ${r.minimumBytes} bytes: ${r.binaryParams} binary weights at 1 bit + ${r.realParams} real parameters at 32 bits`,
    `  overhead        ${r.overheadBytes} bytes: header ${r.headerBytes}, alignment ${r.alignmentBytes}`,
    `  float32 graph   ${r.float32Bytes} bytes (${kb(r.float32Bytes)}): ${r.compression.toFixed(1)}× larger`,
  ].join('\n')
}

export function registerExport(cli: CAC): void {
  cli
    .command('export <run>', 'Export a fully binary stage as a bit-packed model file')
    .option('--stage <stage>', 'Stage to export', { default: 'bnn' })
    .option('--out <file>', 'Output file (e.g. model.r2bx)')
    .option('--verify', 'Also compare the packed engine with the float graph on the test split')
    .option('--json', 'Print the size report as JSON')
    .action(async (run: string, flags: { stage: string; out?: string; json?: boolean; verify?: boolean }) => {
      if (!flags.out) throw new CliError('export: --out FILE is required')
      const store = new RunStore()
      const report = await exportRun(store, String(run), String(flags.stage), String(flags.out))
      if (!flags.verify) {
        process.stdout.write(`${flags.json ? JSON.stringify(report) : describeExport(report)}\n`)
        return
      }
      const backend = await initBackend()
      const agreement = await kernelsForBackend()
        .then((kernels) => measureAgreement(store, String(run), String(flags.stage), kernels))
        .finally(releaseBackend)
      if (flags.json) {
        process.stdout.write(`${JSON.stringify({ ...report, backend: backend.backend, agreement })}\n`)
        return
      }
      process.stdout.write(
        [
          describeExport(report),
          `  agreement       ${agreement.agreeing}/${agreement.images} test images same top-1 as the float graph ` +
            `(${(agreement.agreement * 100).toFixed(2)}%), ${agreement.kernels} kernels on ${backend.backend}`,
          `  logits          ${agreement.withinTolerance}/${agreement.images} images within ${agreement.tolerance} ` +
            `of their largest logit; worst |packed − graph| ${agreement.maxLogitDiff.toExponential(2)}`,
          `  test top-1      packed ${(agreement.packedTop1 * 100).toFixed(2)}%, graph ${(agreement.graphTop1 * 100).toFixed(2)}%`,
          '',
        ].join('\n'),
      )
    })
}
