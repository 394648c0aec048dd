import { useEffect, useState } from 'react'
import type { ModelSummary } from '../../../shared/api'
import { SummaryTable } from '../components/SummaryTable'
import type { RunView } from '../store'
import { useWorkbench } from '../store/context'

export function ModelView({ view }: { view: RunView }) {
  const { run } = view
  const summarise = useWorkbench((s) => s.modelSummary)
  const [stage, setStage] = useState(run.config.stages.at(-1)?.name ?? '')
  const [result, setResult] = useState<{
    stage: string
    summary: ModelSummary | null
    error: string | null
  } | null>(null)
  useEffect(() => {
    let live = true
    summarise(run.config, stage).then(
      (summary) => live && setResult({ stage, summary, error: null }),
      (error: unknown) => live && setResult({ stage, summary: null, error: (error as Error).message }),
    )
    return () => {
      live = false
    }
  }, [run.config, stage, summarise])
  return (
    <div>
      <label className="inline">
        Stage
        <select value={stage} onChange={(e) => setStage(e.target.value)}>
          {run.config.stages.map((s) => (
            <option key={s.name} value={s.name}>
              {s.name}
            </option>
          ))}
        </select>
      </label>
      {result?.stage !== stage && <p className="muted">Summarising…</p>}
      {result?.stage === stage && result.error && <p className="error">{result.error}</p>}
      {result?.stage === stage && result.summary && <SummaryTable summary={result.summary} />}
    </div>
  )
}
