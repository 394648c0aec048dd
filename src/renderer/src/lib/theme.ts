import { useEffect, useState } from 'react'
import { useWorkbench } from '../store/context'

/** The system's colour scheme, followed live. */
function useSystemDark(): boolean {
  const query = () => typeof matchMedia === 'function' && matchMedia('(prefers-color-scheme: dark)').matches
  const [dark, setDark] = useState(query)
  useEffect(() => {
    if (typeof matchMedia !== 'function') return
    const media = matchMedia('(prefers-color-scheme: dark)')
    const onChange = () => setDark(media.matches)
    media.addEventListener('change', onChange)
    return () => media.removeEventListener('change', onChange)
  }, [])
  return dark
}

/** Whether the UI is drawn dark: the user's choice, else the system's. */
export function useDarkTheme(): boolean {
  const theme = useWorkbench((s) => s.theme)
  const systemDark = useSystemDark()
  return theme === 'system' ? systemDark : theme === 'dark'
}

/** Colours of the figures per theme, matching the CSS variables of styles.css. */
export function themeColours(dark: boolean) {
  return dark
    ? { text: '#e4e6eb', muted: '#9aa1ad', grid: '#333842', panel: '#1f2229', accent: '#6b9cff' }
    : { text: '#1d2129', muted: '#5f6673', grid: '#e3e6ea', panel: '#ffffff', accent: '#2f6fde' }
}
