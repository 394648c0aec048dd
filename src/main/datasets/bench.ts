/** Placeholder until the benchmark lands: reports nothing. */
export async function benchDatasets(): Promise<Record<string, number | string>> {
  return {}
}
