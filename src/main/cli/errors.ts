import { UserError } from '../../shared/errors'

/** An error whose message is complete and actionable: the CLI prints it as one line and exits non-zero. */
export class CliError extends UserError {
  override name = 'CliError'
}
