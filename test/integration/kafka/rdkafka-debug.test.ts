import { test } from 'tap'
import { deleteGroups, deleteTopics, ensureTopics } from '../../../src/kafka/admin.ts'
import { RdkafkaSource } from '../../../src/kafka/rdkafka-source.ts'
import type { SourceLogger } from '../../../src/kafka/source-core.ts'
import { brokers, uniqueName, waitFor } from '../../helpers/worker-harness.ts'

// SLUICE_KAFKA_DEBUG: librdkafka's own lines (here the consumer group's join states) reach the
// logger, each with its facility; without it, none.
for (const debug of ['cgrp', undefined]) {
  test(`rdkafka: librdkafka's debug lines ${debug === undefined ? 'off by default' : `for "${debug}" through the logger`}`, async (t) => {
    const topic = uniqueName('rd_debug')
    const group = uniqueName('rd_debug_g')
    await ensureTopics(brokers, [{ name: topic, partitions: 1 }])
    const lines: Array<{ fac: unknown, msg: string }> = []
    const record = (obj: unknown, msg?: string): void => {
      const o = obj as { librdkafka?: unknown }
      if (o !== null && typeof o === 'object' && o.librdkafka !== undefined) lines.push({ fac: o.librdkafka, msg: msg ?? '' })
    }
    const logger = { info: record, debug: record, warn: record, error: record } as unknown as SourceLogger
    const source = new RdkafkaSource({ brokers, groupId: group, clientId: group, topics: [topic], logger, ...(debug !== undefined ? { debug } : {}) })
    t.teardown(async () => {
      await source.close().catch(() => {})
      await deleteGroups(brokers, [group]).catch(() => {})
      await deleteTopics(brokers, [topic])
    })
    let assigned = false
    await source.start({
      onAssign: async () => { assigned = true; return [] },
      onRevoke: async () => {},
      onBatch: () => {},
      onError: (err) => { t.fail(err.message) }
    })
    await waitFor('the partition assigned', () => assigned, 60_000, 20)
    if (debug === undefined) {
      t.equal(lines.length, 0, 'no librdkafka lines')
    } else {
      const joins = lines.filter((l) => l.fac === 'CGRPJOINSTATE')
      t.ok(joins.length > 0, `${lines.length} librdkafka lines, ${joins.length} of them join-state changes`)
      t.ok(joins.some((l) => /wait-join|steady|wait-assign|wait-metadata|init/.test(l.msg)), `e.g. ${joins[0]?.msg.slice(0, 160)}`)
    }
  })
}
