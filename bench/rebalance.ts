// Rebalance protocols compared on bare node-rdkafka consumers (librdkafka's own rebalance
// handling, not sluice's source): eager (`range,roundrobin`, what sluice runs), cooperative-sticky
// and KIP-848's consumer protocol (`group.protocol=consumer`). A producer keeps a steady rate on a
// 12-partition topic while consumers join and leave one group, 1 -> 2 -> 3 -> 2 -> 1; per step
// the longest time any partition went without a consumed message (its stall), from the change
// until the step ends. Step 1 (no rebalance after the first assignment) is the noise floor.
//   scripts/bench.sh rebalance [rate]     (default 2,000 events/s)
// SLUICE_BENCH_STEP_S (default 15), SLUICE_BENCH_SESSION_TIMEOUT_MS (default 10000; the consumer
// protocol's session timeout and heartbeat interval are the broker's settings).
import { cpus, loadavg } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import rdkafka from 'node-rdkafka'
import { deleteGroups, deleteTopics, ensureTopics } from '../src/kafka/admin.ts'
import { RdkafkaProducer } from '../src/kafka/producer.ts'
import { sampleEvents } from '../src/workload/seed-mix.ts'

const env = process.env
const brokers = env.SLUICE_KAFKA_BROKERS ?? ''
if (brokers === '') throw new Error('SLUICE_KAFKA_BROKERS is not set: run scripts/bench.sh rebalance')
const rate = Number(process.argv[2] ?? 2000)
const stepMs = Number(env.SLUICE_BENCH_STEP_S ?? 15) * 1000
const sessionTimeoutMs = Number(env.SLUICE_BENCH_SESSION_TIMEOUT_MS ?? 10_000)
const PARTITIONS = 12
const tag = `${process.pid}_${Date.now().toString(36)}`
const say = (s = ''): void => { process.stdout.write(s + '\n') }
const load = (): string => loadavg().map((l) => l.toFixed(1)).join(' ')

const protocols: Record<string, Record<string, string | number>> = {
  eager: { 'partition.assignment.strategy': 'range,roundrobin', 'session.timeout.ms': sessionTimeoutMs, 'heartbeat.interval.ms': Math.floor(sessionTimeoutMs / 10) },
  'cooperative-sticky': { 'partition.assignment.strategy': 'cooperative-sticky', 'session.timeout.ms': sessionTimeoutMs, 'heartbeat.interval.ms': Math.floor(sessionTimeoutMs / 10) },
  'consumer (KIP-848)': { 'group.protocol': 'consumer' }
}

/** Per partition: when a message was last consumed, and the longest gap since the last reset. */
class Gaps {
  readonly #last = new Array<number>(PARTITIONS).fill(0)
  #longest = 0
  seen (partition: number): void {
    const now = performance.now()
    const prev = this.#last[partition] as number
    if (prev > 0) this.#longest = Math.max(this.#longest, now - prev)
    this.#last[partition] = now
  }

  /** the longest gap since the last call, counting gaps still open now; resets */
  take (): number {
    const now = performance.now()
    let v = this.#longest
    for (const at of this.#last) if (at > 0) v = Math.max(v, now - at)
    this.#longest = 0
    return v
  }

  get started (): number { return this.#last.filter((at) => at > 0).length }
}

function startConsumer (topic: string, group: string, name: string, protocol: Record<string, string | number>, gaps: Gaps): { consumer: rdkafka.KafkaConsumer, owned: () => number } {
  let assigned = 0
  const consumer = new rdkafka.KafkaConsumer({
    'bootstrap.servers': brokers,
    'group.id': group,
    'client.id': name,
    'enable.auto.commit': true,
    'auto.commit.interval.ms': 500,
    // the topic was created a moment ago: metadata that does not show it yet is refreshed soon
    'topic.metadata.refresh.interval.ms': 1000,
    // node-rdkafka's own callback: assign/unassign, or incremental for cooperative protocols
    rebalance_cb: true,
    ...protocol
  }, { 'auto.offset.reset': 'earliest' })
  // eager: each assignment is whole, each revocation all; the cooperative protocols: increments
  const incremental = protocol['partition.assignment.strategy'] !== 'range,roundrobin'
  consumer.on('rebalance', (err, assignment) => {
    if (err.code === rdkafka.CODES.ERRORS.ERR__ASSIGN_PARTITIONS) assigned = incremental ? assigned + assignment.length : assignment.length
    else if (err.code === rdkafka.CODES.ERRORS.ERR__REVOKE_PARTITIONS) assigned = incremental ? assigned - assignment.length : 0
  })
  consumer.on('data', (m) => { gaps.seen(m.partition) })
  consumer.on('ready', () => { consumer.subscribe([topic]); consumer.consume() })
  consumer.connect()
  return { consumer, owned: () => assigned }
}

/** Leaves the group: unsubscribe (the revocation runs on this thread), then disconnect. */
async function close (c: rdkafka.KafkaConsumer): Promise<void> {
  if (!c.isConnected()) return
  c.unsubscribe()
  await sleep(200)
  await new Promise<void>((resolve) => { c.disconnect(() => { resolve() }) })
}

async function runProtocol (label: string, protocol: Record<string, string | number>): Promise<void> {
  const topic = `bench_rebalance_${tag}_${label.replace(/\W+/g, '_')}`
  const group = `${topic}_g`
  await ensureTopics(brokers, [{ name: topic, partitions: PARTITIONS }])
  const producer = new RdkafkaProducer({ brokers, clientId: `bench-rebalance-${tag}` })
  await producer.connect()
  const state = { stopping: false }
  const producing = (async () => {
    const it = sampleEvents({ count: Number.MAX_SAFE_INTEGER, seed: 5, duplicateRatio: 0, poisonEvery: 0 })[Symbol.iterator]()
    const started = performance.now()
    let sent = 0
    while (!state.stopping) {
      const due = Math.floor(((performance.now() - started) / 1000) * rate)
      const batch = []
      // round-robin over the partitions: every partition always has messages arriving
      for (; sent < due; sent++) {
        const r = it.next().value as { key: Buffer, value: Buffer }
        batch.push({ topic, partition: sent % PARTITIONS, key: r.key, value: r.value })
      }
      if (batch.length > 0) await producer.produceBatch(batch)
      await sleep(50)
    }
  })()
  const gaps = new Gaps()
  const members: Array<ReturnType<typeof startConsumer>> = []
  try {
    members.push(startConsumer(topic, group, 'c1', protocol, gaps))
    // step 1 starts once every partition is consumed
    while (gaps.started < PARTITIONS) await sleep(200)
    const plan = [1, 2, 3, 2, 1]
    for (const [i, want] of plan.entries()) {
      gaps.take()
      while (members.length < want) members.push(startConsumer(topic, group, `c${members.length + 1}`, protocol, gaps))
      while (members.length > want) await close((members.pop() as ReturnType<typeof startConsumer>).consumer)
      await sleep(stepMs)
      const longest = gaps.take()
      say(`| ${label} | ${i === 0 ? '1' : `${plan[i - 1] ?? 0} -> ${want}`} | ${members.map((m) => m.owned()).join(' / ')} | ${(longest / 1000).toFixed(1)} s | ${load()} |`)
    }
  } finally {
    state.stopping = true
    await producing
    await producer.close()
    for (const m of members) await close(m.consumer)
    await deleteGroups(brokers, [group]).catch(() => {})
    await deleteTopics(brokers, [topic]).catch(() => {})
  }
}

async function main (): Promise<void> {
  say(`# rebalance protocols (bare node-rdkafka ${rdkafka.librdkafkaVersion} consumers): ${PARTITIONS} partitions, ${rate} events/s, session timeout ${sessionTimeoutMs} ms (classic protocol), ${stepMs / 1000} s per step, ${cpus().length} cores`)
  say('| protocol | consumers | partitions per consumer | longest partition stall | load average 1/5/15 min |')
  say('|---|---|---|---|---|')
  const only = env.SLUICE_BENCH_PROTOCOLS?.split(',').map((s) => s.trim())
  for (const [label, conf] of Object.entries(protocols)) {
    if (only !== undefined && !only.some((o) => label.startsWith(o))) continue
    await runProtocol(label, conf)
  }
}

main().catch((err) => { console.error(err); process.exitCode = 1 })
