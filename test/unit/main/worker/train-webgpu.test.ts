import { beforeAll, describe, expect, it } from 'vitest'
import { initBackend } from '../../../../src/main/backend/backend'
import { expectParityWithCpu, expectTrainingLowersLoss } from '../../../support/backend-parity'

describe('training on the webgpu backend (Dawn; lavapipe on machines without a GPU)', () => {
  beforeAll(async () => {
    expect((await initBackend('webgpu')).backend).toBe('webgpu')
  })

  it('forward values and every gradient match the cpu backend within 1e-4 (relative)', async () => {
    await expectParityWithCpu('webgpu', 1e-4)
  })

  it('a small conv network trains: the loss falls over 40 steps', async () => {
    await expectTrainingLowersLoss('webgpu', 40)
  })
})
