import { useEffect, useMemo } from 'react'
import type { Trace } from 'plotly.js-cartesian-dist-min'
import { Plot } from '../components/Plot'
import { runCurves } from '../../../shared/figures/curves'
import { percent } from '../lib/format'
import { useWorkbench } from '../store/context'

const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#ff9da6', '#9d755d']

export function CompareView() {
  const runs = useWorkbench((s) => s.runs)
  const loadRuns = useWorkbench((s) => s.loadRuns)
  const ids = useWorkbench((s) => s.compareIds)
  const toggle = useWorkbench((s) => s.toggleCompare)
  const histories = useWorkbench((s) => s.histories)
  const loadHistory = useWorkbench((s) => s.loadHistory)
  useEffect(() => {
    void loadRuns()
  }, [loadRuns])
  useEffect(() => {
    for (const id of ids) if (!histories[id]) void loadHistory(id)
  }, [ids, histories, loadHistory])

  const picked = ids.map((id) => histories[id]).filter((h) => h !== undefined)
  const traces = useMemo((): Trace[] => {
    const out: Trace[] = []
    picked.forEach((history, i) => {
      const curves = runCurves(history.run.config, history.log)
      const color = PALETTE[i % PALETTE.length]
      const x = curves.epochs.map((e) => e.x)
      out.push({
        type: 'scatter',
        mode: 'lines+markers',
        name: `${history.run.name} top-1`,
        x,
        y: curves.epochs.map((e) => e.testTop1),
        line: { color },
        hovertemplate: '%{y:.1%} (epoch %{x})<extra>%{fullData.name}</extra>',
      })
      out.push({
        type: 'scatter',
        mode: 'lines',
        name: `${history.run.name} top-5`,
        x,
        y: curves.epochs.map((e) => e.testTop5),
        line: { color, dash: 'dot' },
        hovertemplate: '%{y:.1%} (epoch %{x})<extra>%{fullData.name}</extra>',
      })
    })
    return out
  }, [picked])
  const layout = useMemo(
    () => ({
      xaxis: { title: { text: 'epoch (across stages)' } },
      yaxis: { title: { text: 'test accuracy' }, tickformat: '.0%', range: [0, 1] },
      legend: { orientation: 'h', y: -0.3 },
      margin: { l: 56, r: 16, t: 28, b: 96 },
    }),
    [],
  )

  // Columns: every stage name, in the order they first appear across the picked runs' chains.
  const stageNames = [...new Set(picked.flatMap((h) => h.run.stages.map((s) => s.name)))]

  return (
    <section aria-labelledby="compare-title">
      <h1 id="compare-title">Compare runs</h1>
      {runs.length === 0 && (
        <div className="empty">
          <p>No runs to compare yet.</p>
        </div>
      )}
      <fieldset className="compare-picker">
        <legend>Runs</legend>
        {runs.map((run) => (
          <label key={run.id} className="inline">
            <input type="checkbox" checked={ids.includes(run.id)} onChange={() => toggle(run.id)} />
            {run.name}{' '}
            <span className="muted small">
              ({run.config.pipeline}, {run.status})
            </span>
          </label>
        ))}
      </fieldset>
      {picked.length === 0 && runs.length > 0 && (
        <p className="muted">Pick two or more runs, e.g. r2b against baseline.</p>
      )}
      {picked.length > 0 && (
        <>
          <Plot
            data={traces}
            layout={layout}
            label="Test accuracy of the compared runs"
            testId="compare-plot"
          />
          <table className="table numeric" aria-label="Final accuracy per stage">
            <thead>
              <tr>
                <th rowSpan={2}>Run</th>
                <th rowSpan={2}>Pipeline</th>
                {stageNames.map((s) => (
                  <th key={s} colSpan={2}>
                    {s}
                  </th>
                ))}
              </tr>
              <tr>
                {stageNames.flatMap((s) => [<th key={`${s}-1`}>top-1</th>, <th key={`${s}-5`}>top-5</th>])}
              </tr>
            </thead>
            <tbody>
              {picked.map((h) => (
                <tr key={h.run.id}>
                  <td>{h.run.name}</td>
                  <td>{h.run.config.pipeline}</td>
                  {stageNames.flatMap((name) => {
                    const stage = h.run.stages.find((s) => s.name === name)
                    return [
                      <td key={`${name}-1`}>{stage ? percent(stage.testTop1) : ''}</td>,
                      <td key={`${name}-5`}>{stage ? percent(stage.testTop5) : ''}</td>,
                    ]
                  })}
                </tr>
              ))}
            </tbody>
          </table>
        </>
      )}
    </section>
  )
}
