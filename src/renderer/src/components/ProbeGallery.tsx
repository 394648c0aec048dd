import { useEffect, useMemo, useState } from 'react'
import type { ImageBatch } from '../../../shared/api'
import { decodeUint8 } from '../../../shared/binary'
import { useWorkbench } from '../store/context'
import { ImageCanvas, imageAt } from './ImageCanvas'

const NO_CLASSES: string[] = []

/** The class names of a dataset (loading the dataset list when it is not there yet). */
export function useClassNames(datasetId: string): string[] {
  const loaded = useWorkbench((s) => s.datasetsLoaded)
  const loadDatasets = useWorkbench((s) => s.loadDatasets)
  useEffect(() => {
    if (!loaded) void loadDatasets()
  }, [loaded, loadDatasets])
  return useWorkbench((s) => s.datasets.find((d) => d.id === datasetId)?.classes ?? NO_CLASSES)
}

export interface ProbeImages {
  batch: ImageBatch | null
  /** Pixels and label of a test image of the batch, by its index in the split. */
  image(index: number): { pixels: Uint8Array; shape: ImageBatch['shape']; label: number } | null
  error: string | null
}

/** The probe images of a run (test split), read once per set of indices. */
export function useProbeImages(datasetId: string, indices: readonly number[]): ProbeImages {
  const readImages = useWorkbench((s) => s.readImages)
  const key = indices.join(',')
  const [state, setState] = useState<{ key: string; batch: ImageBatch | null; error: string | null }>({
    key: '',
    batch: null,
    error: null,
  })
  useEffect(() => {
    if (indices.length === 0) return
    let live = true
    readImages(datasetId, 'test', [...indices]).then(
      (batch) => live && setState({ key, batch, error: null }),
      (error: unknown) => live && setState({ key, batch: null, error: (error as Error).message }),
    )
    return () => {
      live = false
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [datasetId, key, readImages])
  const pixels = useMemo(() => (state.batch ? decodeUint8(state.batch.pixels) : null), [state.batch])
  return useMemo(
    () => ({
      batch: state.batch,
      error: state.error,
      image: (index: number) => {
        const batch = state.batch
        const k = batch ? batch.indices.indexOf(index) : -1
        if (!batch || !pixels || k < 0) return null
        return { pixels: imageAt(pixels, batch.shape, k), shape: batch.shape, label: batch.labels[k] ?? 0 }
      },
    }),
    [state, pixels],
  )
}

/** The probe images as thumbnails with their class, one of them chosen. */
export function ProbeGallery({
  probes,
  images,
  classes,
  selected,
  onSelect,
}: {
  probes: readonly number[]
  images: ProbeImages
  classes: readonly string[]
  /** Position in `probes` of the chosen one; null when none is (another image is shown). */
  selected: number | null
  onSelect: (k: number) => void
}) {
  return (
    <div className="row gallery" role="group" aria-label="Probe images">
      {probes.map((index, k) => {
        const image = images.image(index)
        const className = image ? (classes[image.label] ?? `class ${image.label}`) : null
        return (
          <button
            key={index}
            type="button"
            className={k === selected ? 'thumb active' : 'thumb'}
            aria-pressed={k === selected}
            aria-label={`Probe ${k + 1}, test image ${index}${className ? `, ${className}` : ''}`}
            onClick={() => onSelect(k)}
          >
            {image ? (
              <ImageCanvas
                pixels={image.pixels}
                shape={image.shape}
                size={44}
                label={`test image ${index}`}
              />
            ) : (
              <span className="thumb-label">#{index}</span>
            )}
            <span className="thumb-label">{className ?? `#${index}`}</span>
          </button>
        )
      })}
    </div>
  )
}
