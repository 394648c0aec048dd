/** The exponential-moving-average weight of per-step curves, as TensorBoard's slider sets it (0 to 0.99). */
export function SmoothingSlider({ value, onChange }: { value: number; onChange: (value: number) => void }) {
  return (
    <label className="inline small">
      Smoothing {value.toFixed(2)}
      <input
        type="range"
        min={0}
        max={0.99}
        step={0.01}
        value={value}
        onChange={(e) => onChange(Number(e.target.value))}
        aria-label="Smoothing"
      />
    </label>
  )
}
