import { useEffect, useMemo, useState } from 'react'
import type { ModelSummary, NewRunRequest } from '../../../shared/api'
import {
  makeRunConfig,
  pipelineNames,
  presetNames,
  type ConfigOverride,
  type EngineName,
  type PipelineName,
  type PresetName,
  type RunConfig,
} from '../../../shared/run-config'
import { StageChain } from '../components/StageChain'
import { EstimatePanel } from '../components/EstimatePanel'
import { KNOB_LABELS, knobProblems, processesProblem, type KnobName, type Knobs } from '../lib/run-form'
import { SummaryTable } from '../components/SummaryTable'
import { useWorkbench } from '../store/context'

const PIPELINE_HELP: Record<PipelineName, string> = {
  r2b: 'Real-to-Binary: teacher → tanh → binary activations → fully binary, with gates, attention and KD',
  baseline: 'Strong baseline: binary activations, then binary weights; learned scales, no teacher',
  sb: 'Strong baseline (same as baseline)',
  'sb+att': 'Strong baseline plus attention matching to a real teacher',
  'sb+att+kd': 'Strong baseline plus attention matching and logit distillation',
  'sb+gate': 'Strong baseline with the data-driven gates instead of learned scales',
  'sb+progressive': 'The progressive teacher-student chain without the gates',
}

/** The typed config overrides the fields stand for, applied to every stage (only fields that are numbers). */
function knobOverrides(numbers: Partial<Record<KnobName, number>>, base: RunConfig): ConfigOverride[] {
  const set: ConfigOverride[] = []
  base.stages.forEach((stage, i) => {
    const { epochs, stepsPerEpoch, batchSize, learningRate } = numbers
    if (epochs !== undefined && epochs !== stage.epochs)
      set.push({ key: `stages.${i}.epochs`, value: epochs })
    if (stepsPerEpoch !== undefined && stepsPerEpoch !== stage.stepsPerEpoch)
      set.push({ key: `stages.${i}.stepsPerEpoch`, value: stepsPerEpoch })
    if (batchSize !== undefined && batchSize !== stage.batchSize)
      set.push({ key: `stages.${i}.batchSize`, value: batchSize })
    if (learningRate !== undefined)
      set.push({ key: `stages.${i}.optimizer.learningRate`, value: learningRate })
  })
  if (numbers.width !== undefined && numbers.width !== base.model.width)
    set.push({ key: 'model.width', value: numbers.width })
  if (numbers.testLimit !== undefined && numbers.testLimit !== base.data.testLimit)
    set.push({ key: 'data.testLimit', value: numbers.testLimit })
  if (numbers.probes !== undefined && numbers.probes !== base.eval.probes)
    set.push({ key: 'eval.probes', value: numbers.probes })
  return set
}

function defaults(base: RunConfig): Knobs {
  const first = base.stages[0]
  return {
    epochs: String(first?.epochs ?? 1),
    stepsPerEpoch: String(first?.stepsPerEpoch ?? 0),
    batchSize: String(first?.batchSize ?? 32),
    width: String(base.model.width),
    learningRate: 'preset',
    testLimit: String(base.data.testLimit),
    probes: String(base.eval.probes),
    seed: String(base.seed),
  }
}

export function NewRunView() {
  const datasets = useWorkbench((s) => s.datasets)
  const loadDatasets = useWorkbench((s) => s.loadDatasets)
  const startRun = useWorkbench((s) => s.startRun)
  const summarise = useWorkbench((s) => s.modelSummary)
  useEffect(() => {
    void loadDatasets()
  }, [loadDatasets])

  const [datasetId, setDatasetId] = useState('')
  const [pipeline, setPipeline] = useState<PipelineName>('r2b')
  const [preset, setPreset] = useState<PresetName>('quick')
  const [downsample, setDownsample] = useState<'real' | 'binary'>('real')
  const [engine, setEngine] = useState<EngineName>('tfjs')
  const about = useWorkbench((s) => s.about)
  const torch = about?.torch ?? null
  const [name, setName] = useState('')
  const base = useMemo(() => makeRunConfig({ preset, pipeline }), [preset, pipeline])
  const [knobs, setKnobs] = useState<Knobs>(() => defaults(base))
  useEffect(() => setKnobs(defaults(base)), [base])
  const [processesText, setProcessesText] = useState('1')
  const [syncBatchNorm, setSyncBatchNorm] = useState(false)
  const [starting, setStarting] = useState(false)
  const [startError, setStartError] = useState<string | null>(null)
  const [summary, setSummary] = useState<{
    key: string
    value: ModelSummary | null
    error: string | null
  } | null>(null)

  const dataset = datasets.find((d) => d.id === datasetId) ?? datasets[0] ?? null
  const { problems, overrides } = useMemo(
    () => knobProblems(knobs, base, (numbers) => knobOverrides(numbers, base)),
    [knobs, base],
  )
  const fieldsValid = Object.keys(problems).length === 0
  const torchEngine = engine === 'torch'
  // The number alone first (the request needs it); whether it divides the batches once the config is known.
  const typedProcesses = torchEngine ? processesProblem(processesText, null).processes : null
  const request: NewRunRequest | null = dataset
    ? {
        dataset: dataset.id,
        preset,
        pipeline,
        downsample,
        ...(engine === 'tfjs' ? {} : { engine }),
        ...(fieldsValid ? { seed: Number(knobs.seed) } : {}),
        // The dataset decides the input, as the host does; then the knobs, typed.
        set: [
          { key: 'data.dataset', value: dataset.id },
          { key: 'data.inputSize', value: dataset.shape[0] },
          { key: 'data.channels', value: dataset.shape[2] },
          { key: 'data.classes', value: dataset.classes.length },
          ...overrides,
        ],
        ...(name.trim() ? { name: name.trim() } : {}),
        ...(typedProcesses !== null && typedProcesses > 1
          ? { dataParallel: { processes: typedProcesses, syncBatchNorm } }
          : {}),
      }
    : null

  // The same validation the host runs, here as the user types: the schema's own messages.
  const validated = useMemo((): { config: RunConfig | null; error: string | null } => {
    if (!request) return { config: null, error: null }
    try {
      if (!fieldsValid) return { config: null, error: null }
      return { config: makeRunConfig(request), error: null }
    } catch (error) {
      return {
        config: null,
        error: error instanceof Error ? error.message.replace(/^--set:? ?/, '') : String(error),
      }
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [JSON.stringify(request), fieldsValid])

  const config = validated.config
  const processes = torchEngine ? processesProblem(processesText, config?.stages ?? null) : null
  const problemCount = Object.keys(problems).length + (processes?.problem ? 1 : 0)
  const lastStage = config?.stages.at(-1)?.name ?? null
  const summaryKey = config && lastStage ? JSON.stringify([config.model, config.data, lastStage]) : null
  useEffect(() => {
    if (!config || !lastStage || !summaryKey) return
    let live = true
    const timer = setTimeout(() => {
      summarise(config, lastStage).then(
        (value) => live && setSummary({ key: summaryKey, value, error: null }),
        (error: unknown) =>
          live &&
          setSummary({ key: summaryKey, value: null, error: String((error as Error).message ?? error) }),
      )
    }, 300)
    return () => {
      live = false
      clearTimeout(timer)
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [summaryKey])

  const knob = (key: KnobName, hint: string) => {
    const problem = problems[key]
    return (
      <label key={key}>
        {KNOB_LABELS[key]}
        <input
          type="text"
          inputMode="decimal"
          value={knobs[key]}
          onChange={(e) => setKnobs({ ...knobs, [key]: e.target.value })}
          aria-invalid={problem ? true : undefined}
          aria-describedby={`${key}-hint${problem ? ` ${key}-problem` : ''}`}
        />
        {problem && (
          <span id={`${key}-problem`} className="error small field-problem">
            {problem}
          </span>
        )}
        <span id={`${key}-hint`} className="muted small">
          {hint}
        </span>
      </label>
    )
  }

  return (
    <section aria-labelledby="new-run-title">
      <h1 id="new-run-title">New run</h1>
      {datasets.length === 0 && (
        <div className="empty">
          <p>No dataset to train on yet: import one in Datasets first.</p>
        </div>
      )}
      {dataset && (
        <form
          className="new-run"
          onSubmit={(e) => {
            e.preventDefault()
            if (!request || !config || processes?.problem) return
            setStarting(true)
            setStartError(null)
            startRun(request).then(
              () => setStarting(false),
              (error: unknown) => {
                setStarting(false)
                setStartError(error instanceof Error ? error.message : String(error))
              },
            )
          }}
        >
          <div className="form-grid">
            <label>
              Dataset
              <select value={dataset.id} onChange={(e) => setDatasetId(e.target.value)}>
                {datasets.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.name} ({d.shape.join('×')}, {d.classes.length} classes)
                  </option>
                ))}
              </select>
            </label>
            <label>
              Pipeline
              <select value={pipeline} onChange={(e) => setPipeline(e.target.value as PipelineName)}>
                {pipelineNames.map((p) => (
                  <option key={p} value={p}>
                    {p}
                  </option>
                ))}
              </select>
              <span className="muted small">{PIPELINE_HELP[pipeline]}</span>
            </label>
            <label>
              Preset
              <select value={preset} onChange={(e) => setPreset(e.target.value as PresetName)}>
                {presetNames.map((p) => (
                  <option key={p} value={p}>
                    {p}
                  </option>
                ))}
              </select>
              <span className="muted small">Budget: data, width, epochs, schedule, augmentation</span>
            </label>
            <label>
              Engine
              <select value={engine} onChange={(e) => setEngine(e.target.value as EngineName)}>
                <option value="tfjs">tfjs ({about?.backend?.backend ?? 'WebGPU or wasm'}, no install)</option>
                <option value="torch" disabled={!torch?.available}>
                  PyTorch{torch?.available ? ` (${torch.defaultDevice ?? 'cpu'})` : ' (not available)'}
                </option>
              </select>
              <span className="muted small">
                {torch?.available
                  ? `PyTorch ${torch.torch} on ${torch.devices.join(', ')}`
                  : (torch?.reason ?? 'looking for PyTorch…')}
              </span>
            </label>
            {torchEngine ? (
              <>
                <label>
                  Processes
                  <input
                    type="text"
                    inputMode="numeric"
                    value={processesText}
                    onChange={(e) => setProcessesText(e.target.value)}
                    aria-invalid={processes?.problem ? true : undefined}
                    aria-describedby={`processes-hint${processes?.problem ? ' processes-problem' : ''}`}
                  />
                  {processes?.problem && (
                    <span id="processes-problem" className="error small field-problem">
                      {processes.problem}
                    </span>
                  )}
                  <span id="processes-hint" className="muted small">
                    Data-parallel (DDP): one per GPU, or processes sharing the CPU cores; each takes an equal
                    share of every batch
                  </span>
                </label>
                <label className="inline">
                  <input
                    type="checkbox"
                    checked={syncBatchNorm && (processes?.processes ?? 1) > 1}
                    disabled={(processes?.processes ?? 1) <= 1}
                    onChange={(e) => setSyncBatchNorm(e.target.checked)}
                    aria-describedby="sync-bn-hint"
                  />
                  SyncBatchNorm
                  <span id="sync-bn-hint" className="muted small">
                    batch-norm statistics over the whole batch, not each process’s share
                  </span>
                </label>
              </>
            ) : (
              <p className="muted small">
                Data-parallel training (several processes) is the PyTorch engine’s: choose PyTorch to use it.
              </p>
            )}
            <label>
              Downsample shortcut
              <select value={downsample} onChange={(e) => setDownsample(e.target.value as 'real' | 'binary')}>
                <option value="real">real 1×1 conv</option>
                <option value="binary">binary 1×1 conv</option>
              </select>
            </label>
            {knob('epochs', `preset: ${base.stages[0]?.epochs}`)}
            {knob('stepsPerEpoch', `0 = the whole training split; preset: ${base.stages[0]?.stepsPerEpoch}`)}
            {knob('batchSize', `preset: ${base.stages[0]?.batchSize}`)}
            {knob('width', `× 64/128/256/512 channels; preset: ${base.model.width}`)}
            {knob('learningRate', '"preset" keeps each stage’s own')}
            {knob('testLimit', `0 = all; preset: ${base.data.testLimit}`)}
            {knob('probes', `attention maps and gates recorded for these; preset: ${base.eval.probes}`)}
            {knob('seed', 'any whole number')}
            <label>
              Name (optional)
              <input type="text" value={name} onChange={(e) => setName(e.target.value)} />
            </label>
          </div>
          {validated.error && (
            <p className="error" role="alert">
              {validated.error}
            </p>
          )}
          {problemCount > 0 && (
            <p className="error" role="alert">
              {problemCount === 1
                ? 'One field needs a change before the run can start (marked above).'
                : `${problemCount} fields need a change before the run can start (marked above).`}
            </p>
          )}
          {config && <StageChain config={config} />}
          {config && <EstimatePanel config={config} />}
          <h3>Model summary {lastStage ? `(stage ${lastStage})` : ''}</h3>
          {summary?.key === summaryKey && summary?.value && <SummaryTable summary={summary.value} compact />}
          {summary?.key === summaryKey && summary?.error && <p className="error">{summary.error}</p>}
          {summaryKey && summary?.key !== summaryKey && <p className="muted">Summarising…</p>}
          {startError && (
            <p className="error" role="alert">
              {startError}
            </p>
          )}
          <button type="submit" className="primary" disabled={!config || !!processes?.problem || starting}>
            {starting ? 'Starting…' : 'Start training'}
          </button>
        </form>
      )}
    </section>
  )
}
