import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import {
  ablationSummary,
  cellKey,
  type AblationGroup,
  type AblationRow,
  type Downsample,
} from '../../../src/shared/ablation'
import type { AblationListing } from '../../../src/shared/api'
import { makeRunConfig, type PresetName } from '../../../src/shared/run-config'
import type { RunMeta, RunStatus } from '../../../src/shared/runs'
import { App } from '../../../src/renderer/src/App'
import { createWorkbenchStore } from '../../../src/renderer/src/store'
import { StoreContext } from '../../../src/renderer/src/store/context'
import { apiDouble, runMeta } from './api-double'

afterEach(cleanup)

/** A run of one cell; a finished one has the same test accuracy on every stage. */
function cellRun(
  preset: PresetName,
  row: AblationRow,
  downsample: Downsample,
  seed: number,
  status: RunStatus,
  top1 = 0,
): RunMeta {
  const config = makeRunConfig({ preset, pipeline: row, downsample, seed })
  const finished = status === 'finished'
  return runMeta({
    id: `run-${row.replace(/\+/g, '-')}-${downsample}-${seed}`,
    name: `${row} · ${downsample} · seed ${seed}`,
    status,
    config,
    stages: config.stages.map((s) => ({
      name: s.name,
      status: finished ? 'finished' : 'pending',
      epochs: s.epochs,
      epochsCompleted: finished ? s.epochs : 0,
      testTop1: finished ? top1 : null,
      testTop5: finished ? top1 + 0.2 : null,
    })),
  })
}

/**
 * A group of two rows given in the reverse of the chain's order, real downsample, two seeds: SB finished
 * twice (50 % and 60 % top-1), R2B once (70 %) with its second seed still running.
 */
function paperGroup(preset: PresetName = 'cifar100-paper') {
  const runs = [
    cellRun(preset, 'r2b', 'real', 1, 'finished', 0.7),
    cellRun(preset, 'r2b', 'real', 2, 'running'),
    cellRun(preset, 'sb', 'real', 1, 'finished', 0.5),
    cellRun(preset, 'sb', 'real', 2, 'finished', 0.6),
  ]
  const group: AblationGroup = {
    version: 1,
    group: `${preset}-group`,
    dataset: 'cifar100',
    preset,
    engine: 'torch',
    rows: ['r2b', 'sb'],
    downsample: ['real'],
    seeds: [1, 2],
    set: [],
    runs: Object.fromEntries(
      runs.map((r) => [
        cellKey(r.config.pipeline as AblationRow, r.config.model.downsample as Downsample, r.config.seed),
        r.id,
      ]),
    ),
    createdAt: '2026-03-01T10:00:00.000Z',
  }
  return { runs, summary: ablationSummary(group, new Map(runs.map((r) => [r.id, r]))) }
}

async function openAblation(options: { ablations?: AblationListing; runs?: RunMeta[] }) {
  const api = apiDouble(options)
  const store = createWorkbenchStore(api)
  render(
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>,
  )
  fireEvent.click(
    within(screen.getByRole('navigation', { name: 'Main' })).getByRole('button', { name: 'Ablation' }),
  )
  await act(async () => {})
  return { api, store }
}

/** The cells of a body row, as their text. */
function rowCells(table: HTMLElement, name: string): string[] {
  const header = within(table).getByRole('rowheader', { name })
  const row = header.closest('tr')!
  return within(row)
    .getAllByRole('cell')
    .map((c) => c.textContent ?? '')
}

describe('the ablation view', () => {
  it('shows the paper’s Table 3 layout: rows in the chain’s order, mean ± std over seeds, the paper’s figures beside', async () => {
    const { runs, summary } = paperGroup()
    await openAblation({ ablations: { groups: [summary], problems: [] }, runs })

    const table = screen.getByRole('table')
    expect(within(table).getByText(/Test accuracy \(%\) of group cifar100-paper-group/)).toBeTruthy()
    expect(
      within(table)
        .getAllByRole('columnheader')
        .map((h) => h.textContent),
    ).toEqual(['Method', 'Real downsample', 'Stage 1', 'Stage 2', 'Top-1', 'Top-5', 'Top-1', 'Top-5'])
    // SB before Real-to-Bin, as in the paper, though the group lists them the other way round.
    expect(
      within(table)
        .getAllByRole('rowheader')
        .map((h) => h.textContent),
    ).toEqual(['Strong baseline (SB)', 'Real-to-Bin'])

    // SB: 50 % and 60 %: 55.0 ± 7.1 (sample std); top-5 70 % and 80 %. The paper's real-downsample SB
    // figures: 72.1 / 89.9 after stage 1, 69.6 / 89.2 after stage 2.
    expect(rowCells(table, 'Strong baseline (SB)')).toEqual([
      '55.0 ± 7.1 n=2paper 72.1',
      '75.0 ± 7.1 n=2paper 89.9',
      '55.0 ± 7.1 n=2paper 69.6',
      '75.0 ± 7.1 n=2paper 89.2',
    ])
    // R2B: one seed finished, so no std; its running seed is not averaged in.
    expect(rowCells(table, 'Real-to-Bin')).toEqual([
      '70.0 n=1paper 76.5',
      '90.0 n=1paper 92.8',
      '70.0 n=1paper 76.2',
      '90.0 n=1paper 92.7',
    ])
    expect(within(table).getAllByText(/^paper /)[0]!.className).toBe('paper-figure')

    expect(screen.getByText('3 of 4 cells finished · 1 run still training')).toBeTruthy()
    const progress = screen.getByRole('progressbar', { name: 'Cells finished' })
    expect([progress.getAttribute('value'), progress.getAttribute('max')]).toEqual(['3', '4'])
    expect(screen.getByRole('combobox', { name: 'Group' })).toHaveProperty('value', 'cifar100-paper-group')
  })

  it('shows no paper figures for another preset, and switches groups with the picker', async () => {
    const paper = paperGroup()
    const quick = paperGroup('quick')
    await openAblation({
      ablations: {
        groups: [quick.summary, paper.summary],
        problems: ['/x/ablations/bad.json is not valid JSON'],
      },
      runs: [...quick.runs, ...paper.runs],
    })
    expect(screen.getByText('/x/ablations/bad.json is not valid JSON')).toBeTruthy()
    expect(screen.queryByText(/^paper /)).toBeNull()
    expect(rowCells(screen.getByRole('table'), 'Strong baseline (SB)')[0]).toBe('55.0 ± 7.1 n=2')

    fireEvent.change(screen.getByRole('combobox', { name: 'Group' }), {
      target: { value: 'cifar100-paper-group' },
    })
    expect(screen.getByText(/Test accuracy \(%\) of group cifar100-paper-group/)).toBeTruthy()
    expect(screen.getAllByText(/^paper /)).toHaveLength(8)
  })

  it('shows the command to run one when there is no group', async () => {
    const { api } = await openAblation({})
    expect(api.calls).toContain('listAblations')
    expect(screen.getByText('No ablation groups yet.')).toBeTruthy()
    expect(
      screen.getByText('npm run r2b -- ablation --dataset fashion-mnist --rows sb,r2b --seeds 3').tagName,
    ).toBe('CODE')
    expect(screen.queryByRole('table')).toBeNull()
  })

  it('opens a cell’s run in the run dashboard when the cell is clicked', async () => {
    const { runs, summary } = paperGroup()
    const { api, store } = await openAblation({ ablations: { groups: [summary], problems: [] }, runs })
    // Real-to-Bin's stage-2 top-1: its first seed finished, so that seed's run opens.
    fireEvent.click(
      within(screen.getByRole('rowheader', { name: 'Real-to-Bin' }).closest('tr')!).getAllByRole('button', {
        name: '70.0',
      })[1]!,
    )
    await act(async () => {})
    expect(store.getState()).toMatchObject({
      view: 'runs',
      runTab: 'dashboard',
      selectedRunId: 'run-r2b-real-1',
    })
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Runs')
    expect(api.calls).toContain('runHistory run-r2b-real-1')
    const item = screen.getByRole('button', { name: /r2b · real · seed 1/ })
    expect(item.getAttribute('aria-current')).toBe('true')
  })

  it('reloads the listing when a run of a listed group changes, and not for other runs', async () => {
    const { runs, summary } = paperGroup()
    const api = apiDouble({ ablations: { groups: [summary], problems: [] }, runs })
    const queued: (() => void)[] = []
    const store = createWorkbenchStore(api, { schedule: (apply) => queued.push(apply) })
    await store.getState().loadAblations()
    const listed = () => api.calls.filter((c) => c === 'listAblations').length
    expect(listed()).toBe(1)
    api.push({ type: 'run', run: runMeta({ id: 'run-elsewhere' }) })
    queued.splice(0).forEach((apply) => apply())
    await act(async () => {})
    expect(listed()).toBe(1)
    api.push({ type: 'run', run: { ...runs[1]!, status: 'finished' } })
    queued.splice(0).forEach((apply) => apply())
    await act(async () => {})
    expect(listed()).toBe(2)
  })
})
