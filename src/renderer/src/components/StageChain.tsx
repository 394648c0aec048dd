import type { RunConfig } from '../../../shared/run-config'
import { stageChain } from '../lib/format'

/** The stage chain as boxes, each naming its teacher (attention/KD) and the stage its weights start from. */
export function StageChain({ config, statuses }: { config: RunConfig; statuses?: Record<string, string> }) {
  const chain = stageChain(config)
  return (
    <ol className="chain" aria-label="Stage chain">
      {chain.map((stage, i) => {
        const losses = [
          'CE',
          stage.losses.attention.weight > 0 ? `attention ×${stage.losses.attention.weight}` : null,
          stage.losses.distillation.weight > 0 ? `KD ×${stage.losses.distillation.weight}` : null,
        ].filter(Boolean)
        return (
          <li key={stage.name} className={`chain-stage ${statuses?.[stage.name] ?? ''}`}>
            {i > 0 && (
              <span className="chain-arrow" aria-hidden="true">
                →
              </span>
            )}
            <div className="chain-box">
              <strong>{stage.name}</strong>
              <span className="small">
                {stage.student.architecture === 'resnet'
                  ? 'real ResNet-18'
                  : `${stage.student.activation} act · ${stage.student.weights} weights · ${stage.student.scaling}`}
              </span>
              <span className="small muted">{losses.join(' + ')}</span>
              <span className="small">
                {stage.teacher ? `taught by ${stage.teacher}` : 'no teacher'}
                {stage.init ? ` · starts from ${stage.init}` : ''}
              </span>
              {statuses?.[stage.name] && <span className="small muted">{statuses[stage.name]}</span>}
            </div>
          </li>
        )
      })}
    </ol>
  )
}
