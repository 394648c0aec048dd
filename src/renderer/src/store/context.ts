import { createContext, useContext } from 'react'
import { useStore } from 'zustand'
import type { WorkbenchState, WorkbenchStore } from './index'

export const StoreContext = createContext<WorkbenchStore | null>(null)

/** Reads a slice of the workbench store; re-renders only when the selected value changes. */
export function useWorkbench<T>(selector: (state: WorkbenchState) => T): T {
  const store = useContext(StoreContext)
  if (!store) throw new Error('useWorkbench must be used inside <StoreContext.Provider>')
  return useStore(store, selector)
}
