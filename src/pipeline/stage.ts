import { SluiceError, errorMessage, isSluiceError } from '../errors.ts'
import type { KafkaMessage } from '../kafka/types.ts'

/**
 * A stage turns one input into one output, synchronously, on the consuming tick (no promise
 * per message). It throws a poison SluiceError for input it rejects; the runner dead-letters
 * the message with the stage's name and moves on.
 */
export interface Stage<I, O> {
  readonly name: string
  run (input: I, origin: KafkaMessage): O
}

/** The name of the stage that rejected a message, carried on the error it threw. */
export function stageOf (err: unknown): string | undefined {
  const s = (err as { stage?: unknown } | null)?.stage
  return typeof s === 'string' ? s : undefined
}

export function compose<A, B> (s1: Stage<A, B>): Stage<A, B>
export function compose<A, B, C> (s1: Stage<A, B>, s2: Stage<B, C>): Stage<A, C>
export function compose<A, B, C, D> (s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>): Stage<A, D>
export function compose<A, B, C, D, E> (s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>): Stage<A, E>
export function compose<A, B, C, D, E, F> (s1: Stage<A, B>, s2: Stage<B, C>, s3: Stage<C, D>, s4: Stage<D, E>, s5: Stage<E, F>): Stage<A, F>
/**
 * Composes stages left to right into one stage. An error thrown by a stage is tagged with that
 * stage's name (unless an inner composition already tagged it); one that is not a SluiceError
 * (a stage's bug, a RangeError) becomes poison SLUICE_ERR_STAGE: the message's dead letter.
 */
export function compose (...stages: Array<Stage<any, any>>): Stage<any, any> {
  const name = stages.map((s) => s.name).join(' > ')
  return {
    name,
    run (input: unknown, origin: KafkaMessage): unknown {
      let value = input
      let i = 0
      try {
        for (; i < stages.length; i++) value = (stages[i] as Stage<unknown, unknown>).run(value, origin)
      } catch (thrown) {
        const name = (stages[i] as Stage<unknown, unknown>).name
        const err = isSluiceError(thrown) ? thrown : new SluiceError('SLUICE_ERR_STAGE', `stage ${name} threw: ${errorMessage(thrown)}`, { cause: thrown })
        if (stageOf(err) === undefined) (err as { stage?: string }).stage = name
        throw err
      }
      return value
    }
  }
}
