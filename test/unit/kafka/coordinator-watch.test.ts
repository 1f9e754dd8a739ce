import { test } from 'tap'
import { CoordinatorWatch, groupState } from '../../../src/kafka/coordinator-watch.ts'

// librdkafka's statistics report as it prints it (2.12: rd_kafka_stats_emit_all), trimmed
const report = (state: string): string => `{ "name": "rdkafka#consumer-1", "type": "consumer", "brokers":{ }, "topics":{ } , "cgrp": { "state": "${state}", "stateage": 5003, "join_state": "steady", "rebalance_age": 9000, "rebalance_cnt": 2, "rebalance_reason": "", "assignment_size": 0 }}`

test('groupState: cgrp.state of a report, null without one or for bad JSON', async (t) => {
  t.equal(groupState(report('up')), 'up')
  t.equal(groupState(report('query-coord')), 'query-coord')
  t.equal(groupState('{ "name": "rdkafka#producer-1", "brokers": {} }'), null, 'no group')
  t.equal(groupState('{ "cgrp": { "state": 3 } }'), null, 'not a string')
  t.equal(groupState('{ "cgrp": '), null, 'cut short')
  t.equal(groupState('null'), null)
})

test('fires once the group has not been up for the limit; up resets the count', async (t) => {
  const w = new CoordinatorWatch(30_000, 0)
  t.equal(w.observe(report('up'), 5_000), null, 'up')
  t.equal(w.observe(report('query-coord'), 20_000), null, 'lost 15 s ago: not yet')
  t.equal(w.observe(report('wait-coord'), 34_999), null, 'states cycling without up still count')
  t.equal(w.observe(report('query-coord'), 35_000), 30_000, 'the limit: fires with how long')
  t.equal(w.observe(report('query-coord'), 40_000), 35_000, 'and goes on firing until reset')
  w.reset(40_000)
  t.equal(w.observe(report('query-coord'), 60_000), null, 'a new consumer: counted from its start')
  t.equal(w.observe(report('up'), 69_000), null)
  t.equal(w.observe(report('up'), 200_000), null, 'an up group never fires, however old')
  t.equal(w.observe('garbage', 229_000), null)
  t.equal(w.observe('garbage', 230_000), 30_000, 'reports without a group state count as not up')
})

test('limit 0 never fires; statistics every quarter of the limit, 1 to 5 s', async (t) => {
  const off = new CoordinatorWatch(0, 0)
  t.equal(off.observe(report('query-coord'), 1e9), null)
  t.equal(off.statsIntervalMs, 0, 'no statistics asked for')
  t.equal(new CoordinatorWatch(30_000).statsIntervalMs, 5_000)
  t.equal(new CoordinatorWatch(8_000).statsIntervalMs, 2_000)
  t.equal(new CoordinatorWatch(3_000).statsIntervalMs, 1_000)
})
