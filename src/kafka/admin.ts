import { setTimeout as sleep } from 'node:timers/promises'
import type { Admin } from '@platformatic/kafka'
import { SluiceError, errorMessage } from '../errors.ts'
import { parseBrokers } from './brokers.ts'
import { createTopicsNative } from './rdkafka-admin.ts'

/**
 * Topic administration over @platformatic/kafka's Admin client: node-rdkafka's AdminClient
 * can create and delete topics but cannot read metadata, list topics or read a group's
 * committed offsets. Imported when first used: the library compiles its option schemas as it
 * loads (~0.3 s of CPU here, docs/benchmarks.md), and the worker needs none of it to start:
 * it hands ensureTopics a connected client (`known`) that reads the metadata, and creates
 * what is missing through node-rdkafka's AdminClient (rdkafka-admin.ts).
 */
type KafkaLib = typeof import('@platformatic/kafka')

/** A client already connected that reads which topics are ready (RdkafkaProducer.readyTopics). */
export interface KnownTopics {
  readyTopics (names: readonly string[]): Promise<ReadonlySet<string>>
}

export interface TopicSpec {
  name: string
  partitions: number
  /** default 1 (the local stack is one broker); use 3 in production */
  replicationFactor?: number
  /** topic-level settings, e.g. { 'retention.ms': '604800000' } */
  config?: Record<string, string>
}

export interface AdminCallOptions {
  clientId?: string
  /** how long to wait for metadata to agree, default 30 s */
  timeoutMs?: number
}

async function withAdmin<T> (brokers: string | readonly string[], opts: AdminCallOptions, fn: (admin: Admin, lib: KafkaLib) => Promise<T>): Promise<T> {
  const lib = await import('@platformatic/kafka')
  const admin = new lib.Admin({ clientId: opts.clientId ?? 'sluice-admin', bootstrapBrokers: parseBrokers(brokers), retries: 2, retryDelay: 250 })
  try {
    return await fn(admin, lib)
  } finally {
    await admin.close().catch(() => {})
  }
}

function kafkaError ({ findErrorBy }: KafkaLib, action: string, err: unknown): SluiceError {
  // a request the broker refuses for good (bad replication factor, policy, authorization...)
  const protocol = findErrorBy(err as Error, 'canRetry', false)
  const code = protocol !== null ? 'SLUICE_ERR_KAFKA_FATAL' : 'SLUICE_ERR_KAFKA_TRANSIENT'
  const detail = protocol !== null ? `${protocol.message} (${String(protocol.apiId ?? protocol.code)})` : errorMessage(err)
  return new SluiceError(code, `${action}: ${detail}`, { cause: err })
}

/** Partitions per topic as the metadata shows them (only topics whose partitions all have a leader). */
async function readyTopics (admin: Admin, names: readonly string[]): Promise<Map<string, number>> {
  const existing = new Set(await admin.listTopics())
  const present = names.filter((n) => existing.has(n))
  const out = new Map<string, number>()
  if (present.length === 0) return out
  const metadata = await admin.metadata({ topics: present, forceUpdate: true })
  for (const name of present) {
    const t = metadata.topics.get(name)
    if (t === undefined) continue
    if (t.partitions.length === t.partitionsCount && t.partitions.every((p) => p !== undefined && p.leader >= 0)) {
      out.set(name, t.partitionsCount)
    }
  }
  return out
}

/**
 * Creates the topics that do not exist (an existing topic is left as it is, whatever its
 * partition count) and waits until the metadata shows every one of them with a leader for
 * each partition. Idempotent and safe to run from several workers at once. With `known` (a
 * connected client, as the worker has), its metadata is asked first: when every topic is
 * ready (a restart, another replica) nothing else is done; else the missing ones are created
 * with node-rdkafka's AdminClient (rdkafka-admin.ts) and `known` is asked until they show.
 * Without it, @platformatic/kafka's Admin does both.
 */
export async function ensureTopics (brokers: string | readonly string[], topics: readonly TopicSpec[], opts: AdminCallOptions & { known?: KnownTopics } = {}): Promise<void> {
  if (topics.length === 0) return
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  if (opts.known !== undefined) {
    await ensureKnownTopics(brokers, topics, opts.known, deadline, opts.clientId ?? 'sluice-admin')
    return
  }
  await withAdmin(brokers, opts, async (admin, lib) => {
    let existing: Set<string>
    try {
      existing = new Set(await admin.listTopics())
    } catch (err) {
      throw kafkaError(lib, 'listing Kafka topics', err)
    }
    for (const spec of topics) {
      if (existing.has(spec.name)) continue
      try {
        await admin.createTopics({
          topics: [{ topic: spec.name, partitions: spec.partitions, replicas: spec.replicationFactor ?? 1 }],
          configs: Object.entries(spec.config ?? {}).map(([name, value]) => ({ name, value }))
        })
      } catch (err) {
        if (lib.findErrorBy(err as Error, 'apiId', 'TOPIC_ALREADY_EXISTS') !== null) continue // created meanwhile
        throw kafkaError(lib, `creating Kafka topic ${spec.name}`, err)
      }
    }
    const names = topics.map((t) => t.name)
    for (;;) {
      let ready: Map<string, number> | null = null
      let lastError: unknown = null
      try {
        ready = await readyTopics(admin, names)
      } catch (err) {
        lastError = err
      }
      const missing = ready === null ? names : names.filter((n) => !ready.has(n))
      if (missing.length === 0) return
      if (Date.now() > deadline) {
        throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `Kafka topics ${missing.join(', ')} did not show up in the metadata in time${lastError !== null ? ': ' + errorMessage(lastError) : ''}`, { cause: lastError })
      }
      await sleep(100)
    }
  })
}

async function ensureKnownTopics (brokers: string | readonly string[], topics: readonly TopicSpec[], known: KnownTopics, deadline: number, clientId: string): Promise<void> {
  const names = topics.map((t) => t.name)
  let lastError: unknown = null
  const readNow = async (): Promise<ReadonlySet<string> | null> => await known.readyTopics(names).catch((err: unknown) => { lastError = err; return null })
  let ready = await readNow()
  if (ready !== null && names.every((n) => ready?.has(n))) return
  const missing = ready === null ? topics : topics.filter((t) => !(ready as ReadonlySet<string>).has(t.name))
  await createTopicsNative(brokers, missing.map((t) => ({ name: t.name, partitions: t.partitions, replicationFactor: t.replicationFactor ?? 1, config: t.config ?? {} })), { clientId, timeoutMs: Math.max(1000, deadline - Date.now()) })
  for (;;) {
    ready = await readNow()
    const left = ready === null ? names : names.filter((n) => !(ready as ReadonlySet<string>).has(n))
    if (left.length === 0) return
    if (Date.now() > deadline) {
      throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `Kafka topics ${left.join(', ')} did not show up in the metadata in time${lastError !== null ? ': ' + errorMessage(lastError) : ''}`, { cause: lastError })
    }
    await sleep(100)
  }
}

/** Deletes the topics that exist and waits until the metadata no longer lists them. */
export async function deleteTopics (brokers: string | readonly string[], names: readonly string[], opts: AdminCallOptions = {}): Promise<void> {
  if (names.length === 0) return
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000)
  await withAdmin(brokers, opts, async (admin, lib) => {
    const wanted = new Set(names)
    const present = (await admin.listTopics()).filter((n) => wanted.has(n))
    if (present.length === 0) return
    try {
      await admin.deleteTopics({ topics: present })
    } catch (err) {
      if (lib.findErrorBy(err as Error, 'apiId', 'UNKNOWN_TOPIC_OR_PARTITION') === null) throw kafkaError(lib, `deleting Kafka topics ${present.join(', ')}`, err)
    }
    for (;;) {
      const left = (await admin.listTopics()).filter((n) => wanted.has(n))
      if (left.length === 0) return
      if (Date.now() > deadline) throw new SluiceError('SLUICE_ERR_KAFKA_TRANSIENT', `Kafka topics ${left.join(', ')} are still listed after deletion`)
      await sleep(100)
    }
  })
}

/**
 * The group's committed offsets (next offset to read) per partition of a topic; partitions
 * without a commit are left out. For lag tools and tests: sluice's own offsets live in
 * PostgreSQL.
 */
export async function committedOffsets (brokers: string | readonly string[], groupId: string, topic: string, opts: AdminCallOptions = {}): Promise<Map<number, number>> {
  return withAdmin(brokers, opts, async (admin) => {
    const metadata = await admin.metadata({ topics: [topic] })
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0
    const partitions = Array.from({ length: count }, (_, i) => i)
    const groups = await admin.listConsumerGroupOffsets({ groups: [{ groupId, topics: [{ name: topic, partitionIndexes: partitions }] }] })
    const out = new Map<number, number>()
    for (const g of groups) {
      for (const t of g.topics) {
        if (t.name !== topic) continue
        for (const p of t.partitions) {
          if (p.committedOffset >= 0n) out.set(p.partitionIndex, Number(p.committedOffset))
        }
      }
    }
    return out
  })
}

/** Deletes consumer groups (they must have no members); unknown groups are ignored. */
export async function deleteGroups (brokers: string | readonly string[], groups: readonly string[], opts: AdminCallOptions = {}): Promise<void> {
  if (groups.length === 0) return
  await withAdmin(brokers, opts, async (admin, lib) => {
    try {
      await admin.deleteGroups({ groups: [...groups] })
    } catch (err) {
      if (lib.findErrorBy(err as Error, 'apiId', 'GROUP_ID_NOT_FOUND') === null) throw kafkaError(lib, `deleting consumer groups ${groups.join(', ')}`, err)
    }
  })
}
