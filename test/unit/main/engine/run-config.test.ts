import { describe, expect, it } from 'vitest'
import {
  ConfigError,
  RunConfig,
  applyOverrides,
  makeRunConfig,
  pipelineNames,
  presetNames,
  teacherRecipes,
} from '../../../../src/shared/run-config'

describe('run config presets', () => {
  it('every preset × pipeline × downsample validates', () => {
    for (const preset of presetNames) {
      for (const pipeline of pipelineNames) {
        for (const downsample of ['real', 'binary'] as const) {
          const config = makeRunConfig({ preset, pipeline, downsample })
          expect(RunConfig.parse(config)).toEqual(config)
          expect(config.model.downsample).toBe(downsample)
        }
      }
    }
  })

  it('r2b: teacher → tanh → sign activations → fully binary initialised from the previous stage', () => {
    const { stages } = makeRunConfig({ pipeline: 'r2b' })
    expect(stages.map((s) => s.name)).toEqual(['teacher', 'tanh', 'ban', 'bnn'])
    expect(stages.map((s) => s.teacher)).toEqual(['none', 'stage:teacher', 'stage:tanh', 'stage:ban'])
    expect(stages.map((s) => s.init)).toEqual(['none', 'none', 'none', 'stage:ban'])
    expect(stages.map((s) => s.student.activation)).toEqual(['identity', 'tanh', 'sign', 'sign'])
    expect(stages.map((s) => s.student.weights)).toEqual(['real', 'real', 'real', 'sign'])
    expect(stages.map((s) => s.losses.attention.weight)).toEqual([0, 30, 30, 0])
    expect(stages.map((s) => s.losses.distillation.weight)).toEqual([0, 3, 3, 0.8])
    expect(stages.slice(1).every((s) => s.student.scaling === 'gate')).toBe(true)
  })

  it('baseline: two stages, no teacher, learned scale', () => {
    const { stages } = makeRunConfig({ pipeline: 'baseline', preset: 'imagenet-paper' })
    expect(stages).toHaveLength(2)
    expect(stages.every((s) => s.teacher === 'none' && s.student.scaling === 'learned')).toBe(true)
    expect(stages[0]?.optimizer).toMatchObject({ learningRate: 1e-3, weightDecay: 1e-5 })
    expect(stages[1]?.optimizer).toMatchObject({ learningRate: 2e-4, weightDecay: 0 })
    expect(stages[1]?.init).toBe('stage:sb-ban')
  })

  it('paper budgets carry the paper schedule', () => {
    const cifar = makeRunConfig({ preset: 'cifar100-paper' })
    expect(cifar.stages[0]).toMatchObject({ epochs: 350, batchSize: 128 })
    expect(cifar.stages[0]?.schedule.milestones).toEqual([150, 250, 320])
    expect(cifar.stages[0]?.augment).toMatchObject({ mixupAlpha: 0.2, rotationDegrees: 15 })
    const imagenet = makeRunConfig({ preset: 'imagenet-paper' })
    expect(imagenet.stages[0]?.schedule).toMatchObject({ milestones: [40, 60, 70], factor: 0.3 })
    expect(imagenet.data.inputSize).toBe(224)
    // R2B's last stage: cosine with 10 warm-up epochs; the strong baseline's stages: step ×0.1, 5 warm-up.
    expect(imagenet.stages[3]?.schedule).toMatchObject({ kind: 'cosine', warmupEpochs: 10 })
    const sb = makeRunConfig({ preset: 'imagenet-paper', pipeline: 'sb' })
    for (const stage of sb.stages)
      expect(stage.schedule).toMatchObject({
        kind: 'step',
        milestones: [40, 60, 70],
        factor: 0.1,
        warmupEpochs: 5,
      })
    // CIFAR's binary-weight stage warms up too.
    expect(cifar.stages.at(-1)?.schedule).toMatchObject({ warmupEpochs: 5 })
  })

  it('imagenet-paper: resized crop, flip and colour jitter in the real-weight stages, none in the binary-weight one', () => {
    const imagenet = makeRunConfig({ preset: 'imagenet-paper' })
    expect(imagenet.data).toMatchObject({ inputSize: 224, storedSize: 256 })
    const [teacher, tanh, ban, bnn] = imagenet.stages
    for (const stage of [teacher, tanh, ban])
      expect(stage?.augment).toMatchObject({
        flip: true,
        resizedCropMinArea: 0.08,
        colorJitter: 0.4,
        cropPadding: 0,
      })
    expect(bnn?.augment).toMatchObject({ flip: false, resizedCropMinArea: 0, colorJitter: 0 })
  })

  it('refuses the crop path with shifts or rotation, and a store smaller than the input', () => {
    expect(() =>
      applyOverrides(makeRunConfig({ preset: 'imagenet-paper' }), ['stages.0.augment.cropPadding=4']),
    ).toThrow(/stages\.0\.augment: the resized crop and colour jitter go with flips and mixup only/)
    expect(() =>
      applyOverrides(makeRunConfig({ preset: 'imagenet-paper' }), ['data.storedSize=200']),
    ).toThrow(/data\.storedSize: the stored images must be at least as large as the input/)
  })
})

describe('the teacher recipe', () => {
  const SGD_REFERENCE = { kind: 'sgd', learningRate: 0.1, momentum: 0, weightDecay: 0 }

  it('defaults to the students’ recipe: the same config as without the option, Adam for the teacher', () => {
    for (const preset of presetNames)
      for (const pipeline of pipelineNames) {
        const students = makeRunConfig({ preset, pipeline, teacherRecipe: 'students' })
        expect(students).toEqual(makeRunConfig({ preset, pipeline }))
        expect(students.stages.every((s) => s.optimizer.kind === 'adamw')).toBe(true)
      }
    const teacher = makeRunConfig({ preset: 'imagenet-paper' }).stages[0]
    expect(teacher).toMatchObject({ name: 'teacher', epochs: 75, batchSize: 256 })
    expect(teacher?.optimizer).toEqual({
      kind: 'adamw',
      learningRate: 1e-3,
      weightDecay: 1e-5,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-7,
      momentum: 0,
    })
    expect(teacher?.schedule).toMatchObject({ kind: 'step', milestones: [40, 60, 70], factor: 0.3 })
  })

  it('reference: larq zoo’s TrainFPResnet18 for the imagenet-paper teacher, nothing else changed', () => {
    const students = makeRunConfig({ preset: 'imagenet-paper', pipeline: 'r2b' })
    const reference = makeRunConfig({ preset: 'imagenet-paper', pipeline: 'r2b', teacherRecipe: 'reference' })
    const teacher = reference.stages[0]
    expect(teacher).toMatchObject({ name: 'teacher', epochs: 100, batchSize: 512, stepsPerEpoch: 0 })
    expect(teacher?.student.architecture).toBe('resnet')
    expect(teacher?.optimizer).toMatchObject(SGD_REFERENCE)
    expect(teacher?.schedule).toMatchObject({ kind: 'cosine', warmupEpochs: 5 })
    expect(teacher?.augment).toEqual(students.stages[0]?.augment)
    expect(reference.stages.slice(1)).toEqual(students.stages.slice(1))
    expect({ ...reference, stages: [] }).toEqual({ ...students, stages: [] })
  })

  it('reference elsewhere: SGD 0.1 with cosine over the preset’s own warm-up, epochs and batch', () => {
    for (const preset of ['quick', 'ablation-small', 'cifar100-paper'] as const) {
      const students = makeRunConfig({ preset })
      const reference = makeRunConfig({ preset, teacherRecipe: 'reference' })
      const [own, teacher] = [students.stages[0], reference.stages[0]]
      expect(teacher?.optimizer, preset).toMatchObject(SGD_REFERENCE)
      expect(teacher?.schedule, preset).toMatchObject({
        kind: 'cosine',
        warmupEpochs: own?.schedule.warmupEpochs,
      })
      expect(teacher, preset).toMatchObject({ epochs: own?.epochs, batchSize: own?.batchSize })
      expect(reference.stages.slice(1), preset).toEqual(students.stages.slice(1))
    }
  })

  it('pipelines without a teacher are the same under either recipe', () => {
    for (const pipeline of ['baseline', 'sb', 'sb+gate'] as const)
      for (const preset of presetNames)
        expect(makeRunConfig({ preset, pipeline, teacherRecipe: 'reference' })).toEqual(
          makeRunConfig({ preset, pipeline }),
        )
    for (const recipe of teacherRecipes)
      for (const pipeline of pipelineNames) {
        const config = makeRunConfig({ pipeline, teacherRecipe: recipe })
        expect(RunConfig.parse(config)).toEqual(config)
      }
  })

  it('an SGD stage can be set by --set like any other', () => {
    const config = applyOverrides(base(), ['stages.1.optimizer.kind=sgd', 'stages.1.optimizer.momentum=0.9'])
    expect(config.stages[1]?.optimizer).toMatchObject({ kind: 'sgd', momentum: 0.9 })
    expect(() => applyOverrides(base(), ['stages.0.optimizer.kind=lamb'])).toThrow(
      /allowed values: adamw, sgd/,
    )
    expect(() => applyOverrides(base(), ['stages.0.optimizer.momentum=1.5'])).toThrow(ConfigError)
  })
})

function base() {
  return makeRunConfig({ pipeline: 'r2b' })
}

describe('--set overrides', () => {
  const base = makeRunConfig({ pipeline: 'r2b' })

  it('sets numbers, booleans, enums and lists by path', () => {
    const config = applyOverrides(base, [
      'model.width=0.5',
      'model.latentClip=false',
      'model.binaryPadding=zero',
      'stages.1.losses.attention.form=paper',
      'stages.0.schedule.milestones=3,5',
    ])
    expect(config.model.width).toBe(0.5)
    expect(config.model.latentClip).toBe(false)
    expect(config.model.binaryPadding).toBe('zero')
    expect(config.stages[1]?.losses.attention.form).toBe('paper')
    expect(config.stages[0]?.schedule.milestones).toEqual([3, 5])
  })

  it('rejects an unknown key and suggests the right ones', () => {
    expect(() => applyOverrides(base, ['width=2'])).toThrow(ConfigError)
    expect(() => applyOverrides(base, ['width=2'])).toThrow(/did you mean model\.width/)
  })

  it('rejects a value outside an enum and names the allowed values', () => {
    expect(() => applyOverrides(base, ['model.binaryPadding=two'])).toThrow(/allowed values: one, zero/)
    expect(() => applyOverrides(base, ['model.width=wide'])).toThrow(/not a number/)
  })

  it('rejects a reference to a stage that does not come earlier', () => {
    expect(() => applyOverrides(base, ['stages.1.teacher=stage:bnn'])).toThrow(/not an earlier stage/)
  })

  it('sets a key of every stage with stages.*, and takes typed overrides as they are', () => {
    const sb = makeRunConfig({ pipeline: 'sb', set: ['stages.*.epochs=3'] })
    const r2b = makeRunConfig({ pipeline: 'r2b', set: ['stages.*.epochs=3'] })
    expect(sb.stages.map((s) => s.epochs)).toEqual([3, 3])
    expect(r2b.stages.map((s) => s.epochs)).toEqual([3, 3, 3, 3])
    const typed = makeRunConfig({
      set: [
        { key: 'model.width', value: 0.5 },
        { key: 'stages.*.batchSize', value: 8 },
      ],
    })
    expect(typed.model.width).toBe(0.5)
    expect(typed.stages.every((s) => s.batchSize === 8)).toBe(true)
    expect(() => makeRunConfig({ set: [{ key: 'model.width', value: 'wide' }] })).toThrow(ConfigError)
  })
})
