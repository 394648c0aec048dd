import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import { App } from '../../../src/renderer/src/App'
import { processesProblem } from '../../../src/renderer/src/lib/run-form'
import { createWorkbenchStore } from '../../../src/renderer/src/store'
import { StoreContext } from '../../../src/renderer/src/store/context'
import type { RunMeta } from '../../../src/shared/runs'
import { aboutWithTorch, apiDouble, dataset, runMeta } from './api-double'

afterEach(cleanup)

function renderWith(api: ReturnType<typeof apiDouble>) {
  const store = createWorkbenchStore(api, { schedule: (apply) => apply() })
  render(
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>,
  )
  return store
}

const runList = () => screen.getByRole('list', { name: 'Run list' })

describe('opening a run folder written elsewhere', () => {
  const clusterRun = runMeta({ id: 'run-9', name: 'cluster run', status: 'running' })

  it('shows the host’s refusal at the field, then attaches, selects and detaches the run', async () => {
    const api = apiDouble({
      runs: [runMeta({ status: 'finished' })],
      folders: { '/shared/run-9': clusterRun },
    })
    const store = renderWith(api)
    act(() => store.getState().navigate('runs'))
    await act(async () => {})

    fireEvent.click(screen.getByRole('button', { name: 'Open run folder…' }))
    const field = screen.getByLabelText(/^Run folder/)
    fireEvent.change(field, { target: { value: '/shared/nothing' } })
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Open' })))
    expect(api.calls).toContain('attachRun /shared/nothing')
    expect(field.getAttribute('aria-invalid')).toBe('true')
    const problem = screen.getByText(/is not a run folder a workbench wrote/)
    expect(problem.textContent).toBe(
      '/shared/nothing is not a run folder a workbench wrote: no run.json there',
    )
    expect(field.getAttribute('aria-describedby')).toContain(problem.id)
    expect(within(runList()).queryByText('cluster run')).toBeNull()

    fireEvent.change(field, { target: { value: '/shared/run-9' } })
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Open' })))
    expect(api.calls).toContain('attachRun /shared/run-9')
    // The form closes; the run is listed, marked attached with its folder, and selected.
    expect(screen.queryByLabelText(/^Run folder/)).toBeNull()
    const item = within(runList()).getByText('cluster run').closest('button') as HTMLElement
    expect(item.getAttribute('aria-current')).toBe('true')
    expect(within(item).getByText('attached').getAttribute('title')).toMatch(/Attached from \/shared\/run-9/)
    expect(store.getState().selectedRunId).toBe('run-9')
    expect(screen.getByRole('heading', { level: 2 }).textContent).toBe('cluster run')
    // Another process trains it: no training controls, and it can only be forgotten, not deleted.
    expect(screen.queryByRole('button', { name: 'Pause' })).toBeNull()
    expect(screen.queryByRole('button', { name: 'Stop' })).toBeNull()
    expect(screen.queryByRole('button', { name: 'Delete' })).toBeNull()
    fireEvent.click(screen.getByRole('button', { name: 'Detach' }))
    const confirm = screen.getByRole('alertdialog', { name: 'Confirm detach' })
    expect(confirm.textContent).toMatch(/Its folder is left as it is/)
    await act(async () => fireEvent.click(within(confirm).getByRole('button', { name: 'Detach run' })))
    expect(api.calls).toContain('removeRun run-9')
    expect(within(runList()).queryByText('cluster run')).toBeNull()
    expect(store.getState().attachedIds).toEqual([])
  })

  it('marks the runs the listing says are attached, and keeps Delete for the store’s own', async () => {
    const api = apiDouble({ runs: [runMeta({ status: 'finished' }), clusterRun], attached: ['run-9'] })
    const store = renderWith(api)
    act(() => store.getState().navigate('runs'))
    await act(async () => {})
    const items = within(runList()).getAllByRole('button')
    const attachedItem = items.find((b) => b.textContent?.includes('cluster run')) as HTMLElement
    expect(within(attachedItem).getByText('attached').getAttribute('title')).toMatch(/followed read-only/)
    const ownItem = items.find((b) => !b.textContent?.includes('cluster run')) as HTMLElement
    expect(within(ownItem).queryByText('attached')).toBeNull()
    act(() => store.getState().selectRun('run-1'))
    await act(async () => {})
    expect(screen.getByRole('button', { name: 'Delete' })).toBeTruthy()
    expect(screen.queryByRole('button', { name: 'Detach' })).toBeNull()
  })
})

describe('a data-parallel run’s dashboard', () => {
  const environment = (distributed: RunMeta['environment']['distributed']): RunMeta['environment'] => ({
    engine: 'torch',
    device: { kind: 'cpu', description: 'x86_64' },
    versions: { python: '3.12', torch: '2.5.1' },
    platform: 'linux',
    backend: null,
    distributed,
  })

  it('describes the processes next to engine and device', async () => {
    const api = apiDouble({
      runs: [
        runMeta({
          environment: environment({
            worldSize: 2,
            nodes: 1,
            backend: 'gloo',
            perProcessBatch: 16,
            syncBatchNorm: true,
          }),
        }),
      ],
    })
    renderWith(api).getState().navigate('runs')
    await act(async () => {})
    const where = screen.getByLabelText('Where it trains').textContent
    expect(where).toMatch(/^Engine torch on cpu \(x86_64\)/)
    expect(where).toContain(
      'data-parallel: 2 processes (1 node, gloo) × 16 images = global batch 32, SyncBatchNorm on',
    )
  })

  it('says nothing of processes for a run in one process', async () => {
    renderWith(apiDouble({ runs: [runMeta({ environment: environment(null) })] }))
      .getState()
      .navigate('runs')
    await act(async () => {})
    expect(screen.getByLabelText('Where it trains').textContent).not.toMatch(/process|data-parallel/)
  })
})

describe('the new-run form’s data-parallel fields', () => {
  it('checks that the processes divide every batch, in plain words', () => {
    const stages = [
      { name: 'teacher', batchSize: 32 },
      { name: 'bnn', batchSize: 48 },
    ]
    expect(processesProblem('2', stages)).toEqual({ processes: 2, problem: null })
    expect(processesProblem('32', stages).problem).toBe(
      'Processes: 32 does not divide the batch size of stage bnn (48); each process takes an equal share of every batch',
    )
    expect(processesProblem('5', stages).problem).toMatch(/does not divide the batch sizes 32, 48;/)
    expect(processesProblem('0', stages).problem).toBe('Processes must be from 1 to 256')
    expect(processesProblem('two', stages).problem).toBe('Processes: “two” is not a whole number')
    expect(processesProblem(' ', stages).problem).toBe('Processes is empty: enter a whole number')
  })

  it('offers them for PyTorch only, refuses a count that does not divide the batch, and sends dataParallel', async () => {
    const api = apiDouble({ datasets: [dataset], about: aboutWithTorch })
    const store = renderWith(api)
    act(() => store.getState().navigate('new-run'))
    await act(async () => {})
    expect(screen.queryByLabelText(/^Processes/)).toBeNull()
    expect(
      screen.getByText(/Data-parallel training \(several processes\) is the PyTorch engine’s/),
    ).toBeTruthy()

    fireEvent.change(screen.getByLabelText(/^Engine/), { target: { value: 'torch' } })
    const processes = screen.getByLabelText(/^Processes/) as HTMLInputElement
    const sync = screen.getByLabelText(/^SyncBatchNorm/) as HTMLInputElement
    expect(processes.value).toBe('1')
    expect(sync.disabled).toBe(true)
    expect(screen.queryByText(/PyTorch engine’s/)).toBeNull()

    fireEvent.change(processes, { target: { value: '3' } })
    expect(processes.getAttribute('aria-invalid')).toBe('true')
    expect(
      screen.getByText(
        'Processes: 3 does not divide the batch size 32; each process takes an equal share of every batch',
      ),
    ).toBeTruthy()
    expect(screen.getByRole('alert').textContent).toMatch(/One field needs a change/)
    const start = screen.getByRole('button', { name: 'Start training' }) as HTMLButtonElement
    expect(start.disabled).toBe(true)
    // The batch size field changes what divides it.
    fireEvent.change(screen.getByLabelText(/^Batch size/), { target: { value: '48' } })
    expect(processes.getAttribute('aria-invalid')).toBeNull()
    fireEvent.change(screen.getByLabelText(/^Batch size/), { target: { value: '32' } })

    fireEvent.change(processes, { target: { value: '2' } })
    expect(processes.getAttribute('aria-invalid')).toBeNull()
    expect(sync.disabled).toBe(false)
    fireEvent.click(sync)
    expect(start.disabled).toBe(false)
    await act(async () => fireEvent.click(start))
    expect(api.startRequests).toHaveLength(1)
    expect(api.startRequests[0]).toMatchObject({
      engine: 'torch',
      dataParallel: { processes: 2, syncBatchNorm: true },
    })
  })

  it('sends no dataParallel for one process', async () => {
    const api = apiDouble({ datasets: [dataset], about: aboutWithTorch })
    const store = renderWith(api)
    act(() => store.getState().navigate('new-run'))
    await act(async () => {})
    fireEvent.change(screen.getByLabelText(/^Engine/), { target: { value: 'torch' } })
    await act(async () => fireEvent.click(screen.getByRole('button', { name: 'Start training' })))
    expect(api.startRequests[0]?.engine).toBe('torch')
    expect(api.startRequests[0]).not.toHaveProperty('dataParallel')
  })
})
