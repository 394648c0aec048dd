/**
 * On-demand inspection: the attention maps and gate values of one image under any saved checkpoint (and,
 * when given, its teacher's maps), for the UI's interactive view.
 */
import type * as tf from '@tensorflow/tfjs'
import type { InspectionResult } from '../../shared/records'
import { modelFromCheckpoint, type Checkpoint } from './checkpoint'
import type { ResNet18 } from './models'
import { probeSnapshot } from './stage'
import type { AttentionForm } from './attention'

export interface InspectOptions {
  checkpoint: Checkpoint
  teacher?: Checkpoint | null
  /** One normalised image [1, H, W, C], as the data source feeds the model (the caller owns it). */
  images: tf.Tensor4D
  form?: AttentionForm
}

export async function inspectImage(options: InspectOptions): Promise<InspectionResult> {
  const form = options.form ?? 'larq'
  const models: ResNet18[] = []
  const { images } = options
  try {
    const student = modelFromCheckpoint(options.checkpoint, 'inspect')
    models.push(student)
    const teacher = options.teacher ? modelFromCheckpoint(options.teacher, 'inspect-teacher') : null
    if (teacher) models.push(teacher)
    const logitsTensor = student.predict(images)
    const logits = (await logitsTensor.data()) as Float32Array
    logitsTensor.dispose()
    const s = await probeSnapshot(student, images, form)
    const t = teacher ? await probeSnapshot(teacher, images, form) : null
    return {
      logits,
      points: s.maps.map((m, j) => {
        const tm = t?.maps[j]
        return {
          point: m.point,
          student: { shape: m.shape, data: m.data },
          teacher: tm ? { shape: tm.shape, data: tm.data } : null,
        }
      }),
      gates: s.gates.map((g) => ({ block: g.block, values: g.data })),
    }
  } finally {
    for (const model of models) model.dispose()
  }
}
