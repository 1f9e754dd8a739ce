import type { ErrorCode } from '../../errors.ts'
import type { KafkaMessage } from '../../kafka/types.ts'

/** One dead-lettered message: its origin and why. */
export interface DlqEntry {
  pipeline: string
  stage: string
  code: ErrorCode
  message: string
  attempts: number
  origin: KafkaMessage
}
