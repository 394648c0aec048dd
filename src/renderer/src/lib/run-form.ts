import type { z } from 'zod'
import { RunConfig, type ConfigOverride } from '../../../shared/run-config'

/** The New Run form's number fields, as typed. */
export interface Knobs {
  epochs: string
  stepsPerEpoch: string
  batchSize: string
  width: string
  learningRate: string
  testLimit: string
  probes: string
  seed: string
}
export type KnobName = keyof Knobs

export const KNOB_LABELS: Record<KnobName, string> = {
  epochs: 'Epochs per stage',
  stepsPerEpoch: 'Steps per epoch',
  batchSize: 'Batch size',
  width: 'Width multiplier',
  learningRate: 'Learning rate',
  testLimit: 'Test images per epoch',
  probes: 'Probe images',
  seed: 'Seed',
}

/** Which field a config path belongs to (`stages.2.epochs` → epochs). */
function knobOf(path: readonly PropertyKey[]): KnobName | null {
  const key = path.map(String).join('.')
  if (/^stages\.\d+\.epochs$/.test(key)) return 'epochs'
  if (/^stages\.\d+\.stepsPerEpoch$/.test(key)) return 'stepsPerEpoch'
  if (/^stages\.\d+\.batchSize$/.test(key)) return 'batchSize'
  if (/^stages\.\d+\.optimizer\.learningRate$/.test(key)) return 'learningRate'
  if (key === 'model.width') return 'width'
  if (key === 'data.testLimit') return 'testLimit'
  if (key === 'eval.probes') return 'probes'
  if (key === 'seed') return 'seed'
  return null
}

/** A schema's complaint in plain words, without its path. */
export function plainIssue(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'too_small': {
      const min = Number(issue.minimum)
      if (min === 0 && !issue.inclusive) return 'must be more than 0'
      return issue.inclusive ? `must be at least ${min}` : `must be more than ${min}`
    }
    case 'too_big':
      return issue.inclusive
        ? `must be at most ${Number(issue.maximum)}`
        : `must be less than ${Number(issue.maximum)}`
    case 'invalid_type':
      return issue.expected === 'int' ? 'must be a whole number' : `must be a ${issue.expected}`
    case 'invalid_format':
    case 'invalid_value':
      return 'is not one of the allowed values'
    default:
      return issue.message.replace(/^Invalid input: /, '')
  }
}

const WHOLE_NUMBERS = new Set<KnobName>([
  'epochs',
  'stepsPerEpoch',
  'batchSize',
  'testLimit',
  'probes',
  'seed',
])

const NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i

/**
 * The fields' problems, each in plain words and all at once: text that is not a number, then every value
 * the run config's schema refuses (checked on the whole config, as the host will), by field.
 */
export function knobProblems(
  knobs: Knobs,
  base: RunConfig,
  overridesFor: (numbers: Partial<Record<KnobName, number>>) => ConfigOverride[],
): { problems: Partial<Record<KnobName, string>>; overrides: ConfigOverride[] } {
  const problems: Partial<Record<KnobName, string>> = {}
  const numbers: Partial<Record<KnobName, number>> = {}
  for (const name of Object.keys(knobs) as KnobName[]) {
    const text = knobs[name].trim()
    if (name === 'learningRate' && (text === '' || text === 'preset')) continue
    if (!NUMBER.test(text)) {
      problems[name] =
        text === ''
          ? `${KNOB_LABELS[name]} is empty: enter a number`
          : `${KNOB_LABELS[name]}: “${text}” is not a number`
      continue
    }
    numbers[name] = Number(text)
  }
  const overrides = overridesFor(numbers)
  const draft = structuredClone(base) as unknown as Record<string, unknown>
  for (const { key, value } of overrides) {
    const path = key.split('.')
    let node = draft as Record<string, unknown>
    for (const part of path.slice(0, -1)) node = node[part] as Record<string, unknown>
    node[path.at(-1)!] = value
  }
  if (numbers.seed !== undefined) draft.seed = numbers.seed
  const parsed = RunConfig.safeParse(draft)
  if (!parsed.success)
    for (const issue of parsed.error.issues) {
      const knob = knobOf(issue.path)
      if (!knob || problems[knob]) continue
      // "more than 0" of a count reads better as "at least 1".
      const count =
        WHOLE_NUMBERS.has(knob) &&
        issue.code === 'too_small' &&
        Number(issue.minimum) === 0 &&
        !issue.inclusive
      problems[knob] = `${KNOB_LABELS[knob]} ${count ? 'must be at least 1' : plainIssue(issue)}`
    }
  return { problems, overrides }
}

/**
 * The Processes field of a PyTorch run (data-parallel, one share of every batch per process), in plain
 * words: a whole number from 1 to 256 that divides each stage's batch size, as the host requires.
 */
export function processesProblem(
  text: string,
  stages: readonly { name: string; batchSize: number }[] | null,
): { processes: number | null; problem: string | null } {
  const trimmed = text.trim()
  if (trimmed === '') return { processes: null, problem: 'Processes is empty: enter a whole number' }
  if (!/^\d+$/.test(trimmed))
    return { processes: null, problem: `Processes: “${trimmed}” is not a whole number` }
  const processes = Number(trimmed)
  if (processes < 1 || processes > 256) return { processes: null, problem: 'Processes must be from 1 to 256' }
  const uneven = (stages ?? []).filter((s) => s.batchSize % processes !== 0)
  if (uneven.length === 0) return { processes, problem: null }
  const sizes = [...new Set(uneven.map((s) => s.batchSize))]
  const where =
    uneven.length === (stages ?? []).length
      ? `the batch size${sizes.length === 1 ? '' : 's'} ${sizes.join(', ')}`
      : `the batch size of stage${uneven.length === 1 ? '' : 's'} ${uneven.map((s) => `${s.name} (${s.batchSize})`).join(', ')}`
  return {
    processes,
    problem: `Processes: ${processes} does not divide ${where}; each process takes an equal share of every batch`,
  }
}
