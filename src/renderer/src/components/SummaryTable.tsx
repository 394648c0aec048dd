import type { ModelSummary } from '../../../shared/api'
import { formatBytes as bytes } from '../lib/format'

const count = (n: number) => Math.round(n).toLocaleString('en-US')

/** larq-style: totals, then (unless compact) one row per layer. */
export function SummaryTable({ summary, compact = false }: { summary: ModelSummary; compact?: boolean }) {
  const t = summary.totals
  return (
    <div className="summary">
      <dl className="facts inline" aria-label="Model totals">
        <div>
          <dt>Parameters</dt>
          <dd>
            {count(t.params)} ({count(t.binaryParams)} binary)
          </dd>
        </div>
        <div>
          <dt>Packed weights</dt>
          <dd>
            {bytes(t.packedBytes)} (float32 {bytes(t.float32Bytes)}, ×{t.compressionRatio.toFixed(1)})
          </dd>
        </div>
        <div>
          <dt>BOPs</dt>
          <dd>{count(t.bops)}</dd>
        </div>
        <div>
          <dt>FLOPs</dt>
          <dd>{count(t.flops)}</dd>
        </div>
        <div>
          <dt>Binarised MACs</dt>
          <dd>{(t.binarisedMacFraction * 100).toFixed(1)}%</dd>
        </div>
        <div>
          <dt>OPs (BOPs/64 + FLOPs)</dt>
          <dd>{count(t.ops)}</dd>
        </div>
      </dl>
      {!compact && (
        <div className="table-scroll">
          <table className="table numeric" aria-label="Model summary">
            <thead>
              <tr>
                <th>Layer</th>
                <th>Kind</th>
                <th>Input prec.</th>
                <th>Output shape</th>
                <th>1-bit params</th>
                <th>32-bit params</th>
                <th>Non-trainable</th>
                <th>Memory</th>
                <th>BOPs</th>
                <th>FLOPs</th>
              </tr>
            </thead>
            <tbody>
              {summary.layers.map((row) => (
                <tr key={row.name}>
                  <td>{row.name}</td>
                  <td>{row.kind}</td>
                  <td>{row.inputPrecision}</td>
                  <td>{row.outputShape.join('×')}</td>
                  <td>{count(row.binaryParams)}</td>
                  <td>{count(row.floatParams)}</td>
                  <td>{count(row.nonTrainableParams)}</td>
                  <td>{bytes(row.memoryBytes)}</td>
                  <td>{count(row.bops)}</td>
                  <td>{count(row.flops)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  )
}
