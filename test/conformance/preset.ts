/**
 * A preset's resolved run config as the workbench builds it, for the PyTorch engine's tests (python/tests
 * keep the quick r2b chain as a literal and check it against this).
 *
 *   npx tsx test/conformance/preset.ts <preset> <pipeline> [key=value...]
 */
import { makeRunConfig, type PipelineName, type PresetName } from '../../src/shared/run-config'

const [preset, pipeline, ...set] = process.argv.slice(2)
console.log(
  JSON.stringify(
    makeRunConfig({ preset: preset as PresetName, pipeline: pipeline as PipelineName, set }),
    null,
    2,
  ),
)
