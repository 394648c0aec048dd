import { UserError } from '../../shared/errors'

/** Why a run cannot be created, queued, trained or inspected, in words that say what to do. */
export class TrainingError extends UserError {
  override name = 'TrainingError'
}
