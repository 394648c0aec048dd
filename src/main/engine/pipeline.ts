/**
 * A run is a chain of stages (the config's `stages`): each names its student, its teacher and its
 * initialisation by reference to an earlier stage (`stage:<name>`) or to another run's stage
 * (`run:<id>/<stage>`, loaded through `loadStage`). The pipeline trains them in order, keeps each trained
 * student only as long as a later stage refers to it, and yields every stage's records.
 */
import { parseStageRef, type RunConfig, type StageRef } from '../../shared/run-config'
import type { EngineRecord } from '../../shared/records'
import { modelFromCheckpoint, type Checkpoint } from './checkpoint'
import type { DataSource } from './data'
import type { ResNet18 } from './models'
import { runStage, usesTeacher, type StopSignal } from './stage'

export interface PipelineOptions {
  config: RunConfig
  data: DataSource
  /** Final checkpoint of a stage of another run (for `run:<id>/<stage>` references). */
  loadStage?: (runId: string, stage: string) => Promise<Checkpoint>
  /**
   * Resuming: the final checkpoints of the stages already completed (by name), and the last epoch checkpoint
   * of the stage that was interrupted, if any. Completed stages are not trained again.
   */
  resume?: { completed: Record<string, Checkpoint>; current?: Checkpoint | null }
  signal?: StopSignal
}

export interface PipelineResult {
  /** The last stage's trained student; the caller owns it. Null when the run was stopped. */
  final: ResNet18 | null
  stopped: boolean
}

/** Names of the earlier stages each stage refers to (as teacher, when its losses use one, and as init). */
function references(config: RunConfig, index: number): string[] {
  const spec = config.stages[index]
  if (!spec) return []
  const refs: StageRef[] = [spec.init]
  if (usesTeacher(spec)) refs.push(spec.teacher)
  return refs.flatMap((ref) => {
    const target = parseStageRef(ref)
    return target.kind === 'stage' ? [target.stage] : []
  })
}

export async function* runPipeline(options: PipelineOptions): AsyncGenerator<EngineRecord, PipelineResult> {
  const { config, data, signal } = options
  const trained = new Map<string, ResNet18>()
  const external = new Map<string, ResNet18>()
  const lastUse = new Map<string, number>()
  config.stages.forEach((_, i) => references(config, i).forEach((name) => lastUse.set(name, i)))

  const resolve = async (ref: StageRef): Promise<ResNet18 | null> => {
    const target = parseStageRef(ref)
    if (target.kind === 'none') return null
    if (target.kind === 'stage') {
      const model = trained.get(target.stage)
      if (!model) throw new Error(`${ref} has not been trained in this run`)
      return model
    }
    const cached = external.get(ref)
    if (cached) return cached
    if (!options.loadStage) throw new Error(`${ref}: no loader for other runs' stages`)
    const { run: runId, stage } = target
    const model = modelFromCheckpoint(await options.loadStage(runId, stage), `${runId}/${stage}`)
    external.set(ref, model)
    return model
  }

  const release = (index: number) => {
    for (const [name, model] of trained) {
      if ((lastUse.get(name) ?? -1) <= index && name !== config.stages[config.stages.length - 1]?.name) {
        model.dispose()
        trained.delete(name)
      }
    }
  }

  let stopped = false
  let active: AsyncGenerator<EngineRecord, ResNet18> | null = null
  try {
    for (let index = 0; index < config.stages.length && !stopped; index++) {
      const spec = config.stages[index]!
      const done = options.resume?.completed[spec.name]
      if (done) {
        trained.set(spec.name, modelFromCheckpoint(done, spec.name))
        release(index)
        continue
      }
      const teacher = usesTeacher(spec) ? await resolve(spec.teacher) : null
      const init = await resolve(spec.init)
      const current = options.resume?.current
      const resume = current && current.manifest.stage === spec.name ? current : null
      const stage = runStage({ config, stageIndex: index, data, teacher, init, resume, signal })
      active = stage
      let next = await stage.next()
      while (!next.done) {
        if (next.value.kind === 'stage-end' && next.value.stopped) stopped = true
        yield next.value
        next = await stage.next()
      }
      active = null
      trained.set(spec.name, next.value)
      release(index)
    }
    const lastName = config.stages[config.stages.length - 1]?.name ?? ''
    const final = stopped ? null : (trained.get(lastName) ?? null)
    if (final) trained.delete(lastName)
    return { final, stopped }
  } finally {
    // Abandoned mid-stage by our consumer: let the stage free its trainer and student.
    if (active) await active.return(null as unknown as ResNet18)
    for (const model of [...trained.values(), ...external.values()]) model.dispose()
  }
}
