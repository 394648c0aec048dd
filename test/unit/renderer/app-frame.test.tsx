import { act, cleanup, fireEvent, render, screen, within } from '@testing-library/react'
import { afterEach, describe, expect, it } from 'vitest'
import type { WorkbenchApi } from '../../../src/shared/api'
import { apiDouble } from './api-double'
import { App } from '../../../src/renderer/src/App'
import { findWorkbenchApi } from '../../../src/renderer/src/bridge'
import { createWorkbenchStore } from '../../../src/renderer/src/store'
import { StoreContext } from '../../../src/renderer/src/store/context'

function renderApp(api: WorkbenchApi | null) {
  const store = createWorkbenchStore(api)
  render(
    <StoreContext.Provider value={store}>
      <App />
    </StoreContext.Provider>,
  )
  return store
}

afterEach(cleanup)

describe('the app frame', () => {
  it('uses the transport the preload exposes, and checks every answer against the API schemas', async () => {
    const calls: string[] = []
    const api = findWorkbenchApi({
      workbenchTransport: {
        call: async (method) => {
          calls.push(method)
          return method === 'listRuns' ? { runs: 'not a list', problems: [] } : null
        },
        onEvent: () => () => {},
      },
    })
    await expect(api!.cancelImport('imp-1')).resolves.toBeNull()
    await expect(api!.listRuns()).rejects.toThrow(/answered listRuns with an unexpected result \(runs: /)
    expect(calls).toEqual(['cancelImport', 'listRuns'])
    expect(findWorkbenchApi({})).toBeNull()
  })

  it('shows the navigation and switches views', async () => {
    renderApp(apiDouble())
    const nav = screen.getByRole('navigation', { name: 'Main' })
    const items = within(nav)
      .getAllByRole('button')
      .map((b) => b.textContent)
    expect(items).toEqual(['Datasets', 'New run', 'Runs', 'Compare', 'Ablation', 'About'])
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Datasets')
    fireEvent.click(within(nav).getByRole('button', { name: 'Runs' }))
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('Runs')
    expect(within(nav).getByRole('button', { name: 'Runs' }).getAttribute('aria-current')).toBe('page')
    fireEvent.click(within(nav).getByRole('button', { name: 'New run' }))
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('New run')
  })

  it('shows versions, then the backend and adapter once the worker reports them, in the about panel', async () => {
    const api = apiDouble()
    renderApp(api)
    await act(async () => {})
    expect(api.calls).toContain('about')
    fireEvent.click(screen.getByRole('button', { name: 'About' }))
    const dialog = screen.getByRole('dialog')
    expect(within(dialog).getByText('45.5.0')).toBeTruthy()
    expect(within(dialog).getByText(/training worker is starting/)).toBeTruthy()

    act(() =>
      api.push({
        type: 'backend',
        error: null,
        backend: {
          backend: 'wasm',
          requested: 'auto',
          reason: 'only a software WebGPU adapter was found',
          adapter: {
            vendor: 'mesa',
            architecture: 'software',
            device: 'llvmpipe',
            description: 'llvmpipe: Mesa 25.0.7',
            isSoftware: true,
          },
          slow: true,
          wasmSimd: true,
          tfjsVersion: '4.22.0',
        },
      }),
    )
    const facts = within(dialog).getByLabelText('Training backend')
    expect(within(facts).getByText('wasm (tfjs 4.22.0)')).toBeTruthy()
    expect(within(facts).getByText(/llvmpipe: Mesa 25.0.7 — mesa, software \(software\)/)).toBeTruthy()
    expect(within(dialog).getByRole('note').textContent).toMatch(/software one/)
    expect(screen.getByText('wasm · slow')).toBeTruthy()

    fireEvent.keyDown(dialog, { key: 'Escape' })
    expect(screen.queryByRole('dialog')).toBeNull()
  })

  it('answers a page without a token with a page that says so, and a refused token likewise', () => {
    const store = renderApp(null)
    expect(screen.getByRole('heading', { level: 1 }).textContent).toBe('This page has no access token')
    expect(screen.queryByRole('navigation', { name: 'Main' })).toBeNull()
    expect(screen.getByText(/npm run r2b -- serve/)).toBeTruthy()
    act(() => store.getState().setConnection({ state: 'refused', detail: null }))
    expect(screen.getByRole('heading', { level: 1 }).textContent).toMatch(/refused this page’s token/)
  })

  it('says so when an open connection closes, and keeps the views', () => {
    const store = renderApp(apiDouble())
    act(() => store.getState().setConnection({ state: 'lost', detail: 'the workbench is not running' }))
    expect(screen.getByRole('alert').textContent).toMatch(
      /connection to the workbench closed: the workbench is not running/,
    )
    expect(screen.getByRole('navigation', { name: 'Main' })).toBeTruthy()
  })

  it('keeps the chosen theme on the document and in storage', () => {
    const store = renderApp(apiDouble())
    fireEvent.change(screen.getByLabelText('Theme'), { target: { value: 'dark' } })
    expect(document.documentElement.dataset.theme).toBe('dark')
    expect(localStorage.getItem('r2b-theme')).toBe('dark')
    act(() => store.getState().setTheme('system'))
    expect(document.documentElement.dataset.theme).toBeUndefined()
  })
})
