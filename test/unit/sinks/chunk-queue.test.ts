import { test } from 'tap'
import { ChunkQueue } from '../../../src/sinks/s3/chunk-queue.ts'
import type { ChunkOutcome } from '../../../src/sinks/s3/chunk-assembler.ts'
import type { ChunkItem } from '../../../src/sinks/s3/snapshot-items.ts'

/** Only what the queue reads of a chunk: its origin offset. */
const chunk = (offset: number): ChunkItem => ({ seq: offset, origin: { topic: 't', partition: 0, offset } }) as unknown as ChunkItem

/** A handler whose calls wait until their chunk's gate is opened (as a chunk waits for a free S3 part). */
function gated (): { handle: (c: ChunkItem) => Promise<ChunkOutcome>, open: (offset: number, err?: Error) => void, handled: number[] } {
  const gates = new Map<number, { resolve: () => void, reject: (err: Error) => void }>()
  const early = new Map<number, Error | null>()
  const handled: number[] = []
  return {
    handled,
    handle: async (c) => {
      const offset = c.origin.offset
      await new Promise<void>((resolve, reject) => {
        if (early.has(offset)) {
          const err = early.get(offset) ?? null
          early.delete(offset)
          if (err === null) resolve()
          else reject(err)
        } else {
          gates.set(offset, { resolve, reject })
        }
      })
      handled.push(offset)
      return { type: 'appended' }
    },
    open: (offset, err) => {
      const g = gates.get(offset)
      if (g === undefined) { early.set(offset, err ?? null); return }
      gates.delete(offset)
      if (err === undefined) g.resolve()
      else g.reject(err)
    }
  }
}

const turn = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve)) }

test("a chunk's outcome is there once it is handled, while the chunks after it still wait", async (t) => {
  const h = gated()
  const q = new ChunkQueue(h.handle)
  const cs = [chunk(0), chunk(1), chunk(2)]
  for (const c of cs) q.push(c)
  let first: ChunkOutcome | null = null
  const asked = q.outcomeOf(cs[0] as ChunkItem).then((o) => { first = o })
  h.open(0)
  await turn()
  t.same(first, { type: 'appended' }, 'the batch of chunk 0 goes on: it does not wait for chunks 1 and 2 (whose parts are not free yet)')
  t.same(h.handled, [0])
  await asked
  h.open(1)
  h.open(2)
  t.same(await q.outcomeOf(cs[2] as ChunkItem), { type: 'appended' })
  t.same(h.handled, [0, 1, 2], 'in offset order')
})

test('a failed chunk is thrown to the batch that asks for it; its retry starts the queue again from it', async (t) => {
  const h = gated()
  const q = new ChunkQueue(h.handle)
  const cs = [chunk(0), chunk(1), chunk(2)]
  for (const c of cs) q.push(c)
  h.open(0)
  h.open(1, new Error('S3 unreachable'))
  await t.rejects(q.outcomeOf(cs[2] as ChunkItem), /S3 unreachable/, 'the queue stopped at chunk 1')
  t.same(h.handled, [0])
  const retried = q.outcomeOf(cs[1] as ChunkItem)
  await turn()
  h.open(1)
  t.same(await retried, { type: 'appended' })
  h.open(2)
  t.same(await q.outcomeOf(cs[2] as ChunkItem), { type: 'appended' })
  t.same(h.handled, [0, 1, 2])
})

test('stop drops what is queued, waits for the chunk being handled, and cancels the waiting batches', async (t) => {
  const h = gated()
  const q = new ChunkQueue(h.handle)
  const cs = [chunk(5), chunk(6), chunk(7)]
  for (const c of cs) q.push(c)
  const waiting = q.outcomeOf(cs[2] as ChunkItem)
  await turn()
  let stopped: number | undefined | null = null
  const stopping = q.stop().then((first) => { stopped = first })
  await turn()
  t.equal(stopped, null, 'waits for chunk 5, which is being handled')
  h.open(5)
  await stopping
  t.equal(stopped, 5, 'the first chunk not done when the stop came (the stored offset must not pass it)')
  t.same(await waiting, { type: 'cancelled' })
  t.same(h.handled, [5])
})
