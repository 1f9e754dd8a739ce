import { setTimeout as sleep } from 'node:timers/promises'
import { test } from 'tap'
import type { Test } from 'tap'
import { committedOffsets, deleteGroups, deleteTopics, ensureTopics } from '../../../src/kafka/admin.ts'
import { PlatformaticSource } from '../../../src/kafka/platformatic-source.ts'
import { RdkafkaProducer } from '../../../src/kafka/producer.ts'
import type { ProduceRecord } from '../../../src/kafka/producer.ts'
import { RdkafkaSource } from '../../../src/kafka/rdkafka-source.ts'
import { tpKey } from '../../../src/kafka/types.ts'
import type { KafkaMessage, Source, SourceHandlers, TopicPartition, TopicPartitionOffset } from '../../../src/kafka/types.ts'

// The Source contract of src/kafka/types.ts, run against the real Kafka of scripts/stack.sh
// for every source implementation. Each subtest has its own topic and group.
const BROKERS = process.env.SLUICE_KAFKA_BROKERS
if (BROKERS === undefined || BROKERS === '') {
  throw new Error('SLUICE_KAFKA_BROKERS is not set: run `eval "$(scripts/stack.sh env)"` (and `scripts/stack.sh up`) first')
}
const brokers = BROKERS
const PARTITIONS = 6
const WAIT_MS = 30_000

interface SourceParams { groupId: string, clientId: string, topics: string[] }
interface Factory { name: string, make (p: SourceParams): Source }

// short session and heartbeat: a member that leaves is noticed within a second
const factories: Factory[] = [
  {
    name: 'rdkafka',
    make: (p) => new RdkafkaSource({ brokers, ...p, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 })
  },
  {
    name: 'platformatic',
    make: (p) => new PlatformaticSource({ brokers, ...p, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500, rebalanceTimeoutMs: 15_000 })
  }
]

function uniqueName (prefix: string): string {
  return `${prefix}_${process.pid}_${Date.now()}_${Math.random().toString(36).slice(2, 8)}`
}

/** Polls a condition; a failure fails fast instead of hanging. */
async function waitFor (what: string, cond: () => boolean, timeoutMs = WAIT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

function range (from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i)
}

interface Fixture {
  topic: string
  group: string
  /** sources started on the topic: closed before the group and the topic are deleted */
  sources: Source[]
  /** runs first when the subtest ends (last registered, first run) */
  defer (fn: () => Promise<void>): void
}

/** A fresh topic and group name for one subtest, all torn down when it ends. */
async function fixture (t: Test, label: string): Promise<Fixture> {
  const topic = uniqueName(`sc_${label}`)
  const group = uniqueName(`scg_${label}`)
  const deferred: Array<() => Promise<void>> = []
  const fx: Fixture = { topic, group, sources: [], defer: (fn) => { deferred.push(fn) } }
  await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS }])
  t.teardown(async () => {
    for (const fn of deferred.reverse()) await fn().catch(() => {})
    await Promise.all(fx.sources.map((s) => s.close().catch(() => {})))
    await deleteGroups(brokers, [group]).catch(() => {})
    await deleteTopics(brokers, [topic])
  })
  return fx
}

let producer: RdkafkaProducer | null = null

/** Produces sequence numbers [from, from + perPartition) to every partition, in order. */
async function produce (topic: string, perPartition: number, from = 0): Promise<void> {
  if (producer === null) {
    producer = new RdkafkaProducer({ brokers, clientId: 'source-contract' })
    await producer.connect()
  }
  const records: ProduceRecord[] = []
  for (let i = from; i < from + perPartition; i++) {
    for (let p = 0; p < PARTITIONS; p++) {
      records.push({ topic, partition: p, key: `k-${p}-${i}`, value: `v-${p}-${i}`, headers: { seq: String(i) } })
    }
  }
  await producer.produceBatch(records)
}

/**
 * Handlers that record everything and check, as messages arrive, that each one belongs to a
 * partition whose onAssign has resolved, whose onRevoke has not started, and that the test
 * has not paused before the current batch.
 */
class Recorder implements SourceHandlers {
  readonly name: string
  readonly messages: KafkaMessage[] = []
  readonly violations: string[] = []
  readonly errors: Error[] = []
  readonly assigns: TopicPartition[][] = []
  readonly revokes: TopicPartition[][] = []
  batches = 0
  readonly owned = new Set<string>()
  readonly paused = new Set<string>()
  pausedInBatch = 0
  startAt: (tp: TopicPartition) => number | undefined = () => undefined
  assignDelayMs = 0
  revokeDelayMs = 50
  /** per delivered message, synchronously (e.g. to store the next offset) */
  onMessage: (m: KafkaMessage) => void = () => {}
  /** when onAssign resolves / once onRevoke has finished */
  onOwned: (tps: TopicPartition[]) => void = () => {}
  onReleased: (tps: TopicPartition[]) => void = () => {}

  constructor (name: string) {
    this.name = name
  }

  onAssign = async (tps: TopicPartition[]): Promise<TopicPartitionOffset[]> => {
    this.assigns.push(tps)
    if (this.assignDelayMs > 0) await sleep(this.assignDelayMs)
    const out: TopicPartitionOffset[] = []
    for (const tp of tps) {
      const offset = this.startAt(tp)
      if (offset !== undefined) out.push({ ...tp, offset })
      this.owned.add(tpKey(tp.topic, tp.partition))
    }
    this.onOwned(tps)
    return out
  }

  onRevoke = async (tps: TopicPartition[]): Promise<void> => {
    this.revokes.push(tps)
    for (const tp of tps) this.owned.delete(tpKey(tp.topic, tp.partition))
    await sleep(this.revokeDelayMs) // in-flight work settling
    this.onReleased(tps)
  }

  onBatch = (messages: KafkaMessage[]): void => {
    const batch = ++this.batches
    for (const m of messages) {
      const key = tpKey(m.topic, m.partition)
      if (!this.owned.has(key)) this.violations.push(`${this.name}: ${key}@${m.offset} delivered while not owned`)
      if (this.paused.has(key) && batch > this.pausedInBatch) this.violations.push(`${this.name}: ${key}@${m.offset} delivered while paused`)
      this.messages.push(m)
      this.onMessage(m)
    }
  }

  onError = (err: Error): void => {
    this.errors.push(err)
  }

  pause (source: Source): void {
    const tps = source.assignments()
    for (const tp of tps) this.paused.add(tpKey(tp.topic, tp.partition))
    this.pausedInBatch = this.batches
    source.pause(tps)
  }

  resume (source: Source): void {
    this.paused.clear()
    source.resume(source.assignments())
  }

  offsetsByPartition (): Map<number, number[]> {
    const out = new Map<number, number[]>()
    for (const m of this.messages) {
      const list = out.get(m.partition) ?? []
      list.push(m.offset)
      out.set(m.partition, list)
    }
    return out
  }
}

/** Each partition's offsets, as delivered to one consumer, strictly increase. */
function checkOrder (t: Test, r: Recorder): void {
  for (const [p, offsets] of r.offsetsByPartition()) {
    t.ok(offsets.every((o, i) => i === 0 || o > (offsets[i - 1] as number)), `${r.name}: partition ${p} delivered in offset order`)
  }
}

function startSource (fx: Fixture, f: Factory, handlers: Recorder): Source {
  const source = f.make({ groupId: fx.group, clientId: uniqueName(`sc-${f.name}`), topics: [fx.topic] })
  fx.sources.push(source)
  source.start(handlers).catch((err: Error) => { handlers.errors.push(err) })
  return source
}

test('source contract', async (t) => {
  t.teardown(async () => {
    await producer?.close()
    producer = null
  })

  for (const f of factories) {
    t.test(f.name, async (t) => {
      t.test('onAssign is awaited before delivery and its offsets are honoured', async (t) => {
        const fx = await fixture(t, 'assign')
        const topic = fx.topic
        await produce(topic, 100) // offsets 0..99 on every partition
        const r = new Recorder(f.name)
        r.assignDelayMs = 300
        r.startAt = () => 50
        const source = startSource(fx, f, r)
        t.notOk(source.isReady(), 'not ready before the group assigned anything')
        await waitFor('300 messages', () => r.messages.length >= 300)
        await sleep(500) // anything extra would show up now
        t.same(r.violations, [], 'nothing delivered before onAssign resolved')
        t.same(r.errors, [], 'no errors')
        t.equal(r.messages.length, 300, 'exactly the messages from offset 50')
        for (let p = 0; p < PARTITIONS; p++) {
          t.same(r.offsetsByPartition().get(p), range(50, 100), `partition ${p}: offsets 50..99, each once, in order`)
        }
        const m = r.messages.find((x) => x.partition === 2 && x.offset === 60) as KafkaMessage
        t.equal(m.key?.toString(), 'k-2-60', 'key')
        t.equal(m.value?.toString(), 'v-2-60', 'value')
        t.equal(m.headers?.seq?.toString(), '60', 'headers')
        t.equal(m.size, 'k-2-60'.length + 'v-2-60'.length, 'size = key + value bytes')
        t.ok(m.timestamp > Date.now() - 600_000 && m.timestamp <= Date.now(), 'timestamp')
        t.ok(source.isReady(), 'ready')
        t.equal(source.assignments().length, PARTITIONS, 'all partitions assigned')
        const hw = await source.highWatermarks()
        t.same(range(0, PARTITIONS).map((p) => hw.get(tpKey(topic, p))), range(0, PARTITIONS).map(() => 100), 'high watermarks')
      })

      t.test('pause stops delivery, resume delivers the rest', async (t) => {
        const fx = await fixture(t, 'pause')
        const topic = fx.topic
        await produce(topic, 10)
        const r = new Recorder(f.name)
        const source = startSource(fx, f, r)
        await waitFor('the first 60 messages', () => r.messages.length >= 60)
        r.pause(source)
        await produce(topic, 20, 10)
        const before = r.messages.length
        await sleep(2_000)
        t.equal(r.messages.length, before, 'nothing delivered for 2 s while paused')
        r.resume(source)
        await waitFor('all 180 messages', () => r.messages.length >= 180)

        // paused from inside onBatch, mid-stream (as the runner's in-flight budget does):
        // what the source has already fetched for these partitions waits for the resume
        let pausedAt = -1
        r.onMessage = () => {
          if (pausedAt < 0 && r.messages.length >= 180 + 600) {
            pausedAt = r.messages.length
            r.pause(source)
          }
        }
        await produce(topic, 400, 30)
        await waitFor('the mid-stream pause', () => pausedAt >= 0)
        await sleep(1_500)
        t.same(r.violations, [], 'nothing of a paused partition delivered after the batch that paused it')
        r.resume(source)
        await waitFor('all 2580 messages', () => r.messages.length >= 180 + 2400)
        await sleep(300)
        t.equal(r.messages.length, 2580, 'each message once')
        for (let p = 0; p < PARTITIONS; p++) {
          t.same(r.offsetsByPartition().get(p), range(0, 430), `partition ${p}: offsets 0..429, in order`)
        }
        t.same(r.violations, [], 'no delivery outside ownership or while paused')
        t.same(r.errors, [], 'no errors')
      })

      t.test('two consumers share the group; the survivor takes over from its offsets', async (t) => {
        const fx = await fixture(t, 'group')
        const topic = fx.topic
        // the offsets "stored with the data": next offset per partition, shared by both
        const stored = new Map<string, number>()
        // who owns a partition, from onAssign resolving until its onRevoke has finished
        const owner = new Map<string, string>()
        const overlaps: string[] = []
        const a = new Recorder(`${f.name}-a`)
        const b = new Recorder(`${f.name}-b`)
        for (const r of [a, b]) {
          r.revokeDelayMs = 300
          r.startAt = (tp) => stored.get(tpKey(tp.topic, tp.partition))
          r.onMessage = (m) => { stored.set(tpKey(m.topic, m.partition), m.offset + 1) }
          r.onOwned = (tps) => {
            for (const tp of tps) {
              const key = tpKey(tp.topic, tp.partition)
              const other = owner.get(key)
              if (other !== undefined && other !== r.name) overlaps.push(`${key} assigned to ${r.name} while ${other} still owned it`)
              owner.set(key, r.name)
            }
          }
          r.onReleased = (tps) => {
            for (const tp of tps) {
              const key = tpKey(tp.topic, tp.partition)
              if (owner.get(key) === r.name) owner.delete(key)
            }
          }
        }
        // messages keep arriving through both rebalances
        let produced = 0
        const feed = { on: true }
        const feeder = (async () => {
          while (feed.on) {
            await produce(topic, 5, produced)
            produced += 5
            await sleep(30)
          }
        })()
        fx.defer(async () => {
          feed.on = false
          await feeder
        })

        const sa = startSource(fx, f, a)
        await waitFor('a to own every partition', () => sa.assignments().length === PARTITIONS)
        const sb = startSource(fx, f, b)
        await waitFor('both to own partitions', () => sa.assignments().length > 0 && sb.assignments().length > 0 &&
          sa.assignments().length + sb.assignments().length === PARTITIONS)
        t.ok(a.revokes.length >= 1, 'a had its partitions revoked when b joined')
        const bAt = b.messages.length
        await waitFor('b to consume', () => b.messages.length > bAt + 30)
        const aBefore = sa.assignments().map((tp) => tp.partition).sort()
        const revokesBefore = a.revokes.length
        await sb.close()
        t.ok(b.revokes.length >= 1, 'b revoked its partitions on close')
        t.notOk(sb.isReady(), 'b is not ready once closed')
        await waitFor('a to own every partition again', () => sa.assignments().length === PARTITIONS)
        t.ok(a.revokes.length > revokesBefore, 'onRevoke called on the survivor')
        t.same(a.revokes.at(-1)?.map((tp) => tp.partition).sort(), aBefore, 'with the partitions it had')
        t.equal(a.assigns.at(-1)?.length, PARTITIONS, 'then onAssign with all of them')
        const handover = new Map(stored)
        await sleep(500)
        feed.on = false
        await feeder
        const total = produced * PARTITIONS
        await waitFor(`all ${total} messages`, () => a.messages.length + b.messages.length >= total)
        await sleep(500)
        const seen = new Map<string, number>()
        for (const m of [...a.messages, ...b.messages]) {
          const k = `${m.partition}@${m.offset}`
          seen.set(k, (seen.get(k) ?? 0) + 1)
        }
        t.equal(seen.size, total, `every one of the ${total} messages delivered`)
        t.same([...seen.values()].filter((n) => n > 1), [], 'none twice')
        let expectedRest = 0
        for (let p = 0; p < PARTITIONS; p++) expectedRest += produced - (handover.get(tpKey(topic, p)) ?? 0)
        const rest = a.messages.filter((m) => m.offset >= (handover.get(tpKey(m.topic, m.partition)) ?? 0))
        t.equal(rest.length, expectedRest, 'the survivor received the rest, from the stored offsets')
        checkOrder(t, a)
        checkOrder(t, b)
        t.same(overlaps, [], 'a partition is never assigned before its previous owner finished onRevoke')
        t.same([...a.violations, ...b.violations], [], 'no delivery outside ownership')
        t.same([...a.errors, ...b.errors], [], 'no errors')
      })

      t.test('a partition onAssign gives no offset starts at the group\'s committed offset, else the earliest', async (t) => {
        const fx = await fixture(t, 'committed')
        const topic = fx.topic
        await produce(topic, 30)
        const first = new Recorder(f.name)
        first.startAt = () => 0
        const a = startSource(fx, f, first)
        await waitFor('180 messages', () => first.messages.length >= 180)
        await a.commit([{ topic, partition: 0, offset: 10 }, { topic, partition: 1, offset: 20 }])
        await a.close()
        const r = new Recorder(f.name)
        r.startAt = (tp) => tp.partition === 2 ? 5 : undefined // partition 2: the worker's own stored offset
        startSource(fx, f, r)
        const want = new Map(range(0, PARTITIONS).map((p) => [p, p === 0 ? 10 : p === 1 ? 20 : p === 2 ? 5 : 0]))
        const total = [...want.values()].reduce((n, from) => n + 30 - from, 0)
        await waitFor(`${total} messages`, () => r.messages.length >= total)
        await sleep(500) // anything extra would show up now
        for (const [p, from] of want) t.same(r.offsetsByPartition().get(p), range(from, 30), `partition ${p}: from ${from}`)
        t.same([...first.errors, ...r.errors], [], 'no errors')
      })

      t.test('commit sets the group committed offsets', async (t) => {
        const fx = await fixture(t, 'commit')
        const topic = fx.topic
        await produce(topic, 20)
        const r = new Recorder(f.name)
        const source = startSource(fx, f, r)
        await waitFor('120 messages', () => r.messages.length >= 120)
        const first = range(0, PARTITIONS).map((p) => ({ topic, partition: p, offset: 10 + p }))
        await source.commit(first)
        const expected = new Map(first.map((o) => [o.partition, o.offset]))
        t.same(await committedOffsets(brokers, fx.group, topic), expected, 'committed offsets = what was passed')
        const second = range(0, 3).map((p) => ({ topic, partition: p, offset: 20 }))
        await source.commit(second)
        for (const o of second) expected.set(o.partition, o.offset)
        t.same(await committedOffsets(brokers, fx.group, topic), expected, 'a later commit moves only its partitions')
        t.same(r.errors, [], 'no errors')
      })
    })
  }
})
