import { test } from 'tap'
import { readFileSync } from 'node:fs'
import { configVariables, loadConfig } from '../../../src/config/config.ts'

const base = { SLUICE_KAFKA_BROKERS: '127.0.0.1:9092', SLUICE_PG_URL: 'postgres://u:secret@127.0.0.1/db', SLUICE_TOPICS: 'entity-events' }

test('defaults, coercion, and a frozen result', async (t) => {
  const c = loadConfig({ ...base, SLUICE_BATCH_MAX_ROWS: '123', SLUICE_PIPELINES: 'audit:a,b' })
  t.equal(c.batch.maxRows, 123)
  t.equal(c.kafka.source, 'rdkafka')
  t.equal(c.pipelines.get('entity-events'), 'entity-events')
  t.equal(c.pipelines.get('a'), 'audit')
  t.equal(c.pipelines.get('b'), 'audit')
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.batch))
  t.throws(() => { (c.batch as { maxRows: number }).maxRows = 1 })
})

test('bad configuration is one clear error', async (t) => {
  t.throws(() => loadConfig({ SLUICE_TOPICS: 'x' }), { code: 'SLUICE_ERR_CONFIG', message: /SLUICE_KAFKA_BROKERS/ })
  t.throws(() => loadConfig({ ...base, SLUICE_BATCH_MAX_ROWS: 'many' }), { code: 'SLUICE_ERR_CONFIG', message: /SLUICE_BATCH_MAX_ROWS.*many/ })
  t.throws(() => loadConfig({ ...base, SLUICE_KAFKA_SOURCE: 'kafkajs' }), { message: /SLUICE_KAFKA_SOURCE/ })
  t.throws(() => loadConfig({ ...base, SLUICE_TOPICS: '' }), { message: /no topic/ })
  t.throws(() => loadConfig({ ...base, SLUICE_TOPICS: 'bad topic' }), { message: /not a valid Kafka topic/ })
  t.throws(() => loadConfig({ ...base, SLUICE_PIPELINES: 'audit:entity-events' }), { message: /two pipelines/ })
  t.throws(() => loadConfig({ ...base, SLUICE_PIPELINES: 'nocolon' }), { message: /pipeline:topic/ })
})

test('every variable the worker reads is documented in the README', async (t) => {
  const readme = readFileSync('README.md', 'utf8')
  for (const name of configVariables) t.match(readme, new RegExp(`^\\| \`${name}\` \\|`, 'm'), `${name} has a row in the README`)
})

test('S3 settings: optional, validated, the secret only with its key', async (t) => {
  t.equal(loadConfig(base).s3, null, 'no bucket: no S3')
  t.equal(loadConfig(base).snapshotsTopic, 'todo-snapshots')
  const c = loadConfig({ ...base, SLUICE_S3_BUCKET: 'sluice', SLUICE_S3_ENDPOINT: 'http://127.0.0.1:17070', SLUICE_S3_ACCESS_KEY: 'k', SLUICE_S3_SECRET_KEY: 's', SLUICE_S3_PART_BYTES: String(16 * 1024 * 1024) })
  t.match(c.s3, { bucket: 'sluice', endpoint: 'http://127.0.0.1:17070', region: 'us-east-1', accessKeyId: 'k', secretAccessKey: 's', prefix: '', partBytes: 16 * 1024 * 1024, queueSize: 2, maxAttempts: 20 })
  t.equal(loadConfig({ ...base, SLUICE_S3_BUCKET: 'sluice' }).s3?.endpoint, null, 'no endpoint: AWS')
  t.throws(() => loadConfig({ ...base, SLUICE_S3_BUCKET: 'sluice', SLUICE_S3_PART_BYTES: '1024' }), { message: /SLUICE_S3_PART_BYTES/ })
  t.throws(() => loadConfig({ ...base, SLUICE_S3_BUCKET: 'sluice', SLUICE_S3_ACCESS_KEY: 'k' }), { message: /go together/ })
  t.throws(() => loadConfig({ ...base, SLUICE_S3_BUCKET: 'Bad_Bucket' }), { message: /SLUICE_S3_BUCKET/ })
  t.throws(() => loadConfig({ ...base, SLUICE_S3_PREFIX: 'no-slash' }), { message: /SLUICE_S3_PREFIX/ })
  t.equal(loadConfig(base).kafka.prefetchBytes, null, 'prefetch: the source\'s own unless set')
  t.equal(loadConfig({ ...base, SLUICE_KAFKA_PREFETCH_BYTES: '4194304' }).kafka.prefetchBytes, 4194304)
})

test('static group membership: SLUICE_KAFKA_INSTANCE_ID', async (t) => {
  t.equal(loadConfig(base).kafka.instanceId, null, 'unset: dynamic membership')
  t.equal(loadConfig({ ...base, SLUICE_KAFKA_INSTANCE_ID: 'sluice-7d9f-x2k.1' }).kafka.instanceId, 'sluice-7d9f-x2k.1')
  t.throws(() => loadConfig({ ...base, SLUICE_KAFKA_INSTANCE_ID: 'a b' }), { code: 'SLUICE_ERR_CONFIG', message: /SLUICE_KAFKA_INSTANCE_ID/ })
})
