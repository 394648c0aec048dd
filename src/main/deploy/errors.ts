import { UserError } from '../../shared/errors'

/** A deployment error a user can act on (bad file, wrong stage, wrong image): the CLI prints its message alone. */
export class DeployError extends UserError {
  override name = 'DeployError'
}
