/**
 * Another workbench process, as far as the training lock can tell: on `acquire <what>` (a line on stdin) it
 * takes the training lock of the runs folder in R2B_HOME and answers `held`; on `release` it lets go and
 * answers `released`. Tests use it to be "the process training run X" without training anything.
 */
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { trainingLock } from '../../src/main/process-lock'

const home = process.env.R2B_HOME
if (!home) throw new Error('lock-holder needs R2B_HOME')
const lock = trainingLock(join(home, 'runs'))

createInterface({ input: process.stdin }).on('line', (line) => {
  const [command, what] = line.trim().split(' ')
  if (command === 'acquire' && what) {
    void lock.acquire(what).then((holder) => {
      process.stdout.write(holder ? `busy ${holder.pid}\n` : 'held\n')
    })
  } else if (command === 'release') {
    void lock.release().then(() => process.stdout.write('released\n'))
  }
})
process.stdout.write('ready\n')
