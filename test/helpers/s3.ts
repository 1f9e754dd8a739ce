// S3 helpers for the snapshot tests: a client on the stack's versitygw (or a private one),
// listings, read-back with sha256, and clean-up of a test's prefix.
import { createHash } from 'node:crypto'
import type { Readable } from 'node:stream'
import { resolve } from 'node:path'
import {
  AbortMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand,
  ListObjectsV2Command, S3Client
} from '@aws-sdk/client-s3'
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3'
import type { Test } from 'tap'
import type { S3Config } from '../../src/config/config.ts'
import { stackScript } from './stack-script.ts'
import { freePort, uniqueName } from './worker-harness.ts'

function need (name: string): string {
  const v = process.env[name]
  if (v === undefined || v === '') throw new Error(`${name} is not set: run \`eval "$(scripts/stack.sh env)"\` (and \`scripts/stack.sh up\`) first`)
  return v
}

export const s3Env = {
  endpoint: need('SLUICE_S3_ENDPOINT'),
  region: need('SLUICE_S3_REGION'),
  bucket: need('SLUICE_S3_BUCKET'),
  accessKey: need('SLUICE_S3_ACCESS_KEY'),
  secretKey: need('SLUICE_S3_SECRET_KEY')
}

/** The sink's S3Config for the stack's server (or another endpoint) under a prefix. */
export function s3Config (prefix: string, over: Partial<S3Config> = {}): S3Config {
  return {
    endpoint: s3Env.endpoint,
    region: s3Env.region,
    bucket: s3Env.bucket,
    accessKeyId: s3Env.accessKey,
    secretAccessKey: s3Env.secretKey,
    prefix,
    partBytes: 5 * 1024 * 1024,
    queueSize: 2,
    maxAttempts: 5,
    chunkTimeoutMs: 15 * 60_000,
    dumpShareMs: 1000,
    indexEntries: 1000,
    ...over
  }
}

/** The worker's environment for S3 under a prefix (endpoint: the stack's unless given). */
export function s3WorkerEnv (prefix: string, endpoint = s3Env.endpoint): Record<string, string> {
  return {
    SLUICE_S3_ENDPOINT: endpoint,
    SLUICE_S3_REGION: s3Env.region,
    SLUICE_S3_BUCKET: s3Env.bucket,
    SLUICE_S3_ACCESS_KEY: s3Env.accessKey,
    SLUICE_S3_SECRET_KEY: s3Env.secretKey,
    SLUICE_S3_PREFIX: prefix
  }
}

export function s3Client (endpoint = s3Env.endpoint): S3Client {
  return new S3Client({
    endpoint,
    region: s3Env.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3Env.accessKey, secretAccessKey: s3Env.secretKey }
  })
}

export async function listKeys (s3: S3Client, prefix: string): Promise<string[]> {
  const out: string[] = []
  let token: string | undefined
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: s3Env.bucket, Prefix: prefix, ContinuationToken: token }))
    for (const o of page.Contents ?? []) if (o.Key !== undefined) out.push(o.Key)
    token = page.NextContinuationToken
  } while (token !== undefined)
  return out.sort()
}

export async function listUploadKeys (s3: S3Client, prefix: string): Promise<string[]> {
  return ((await s3.send(new ListMultipartUploadsCommand({ Bucket: s3Env.bucket, Prefix: prefix }))).Uploads ?? []).map((u) => u.Key as string)
}

export async function head (s3: S3Client, key: string): Promise<HeadObjectCommandOutput> {
  return s3.send(new HeadObjectCommand({ Bucket: s3Env.bucket, Key: key }))
}

/** The object's bytes' sha256 and size, streamed. */
export async function readHash (s3: S3Client, key: string): Promise<{ sha256: string, size: number }> {
  const got = await s3.send(new GetObjectCommand({ Bucket: s3Env.bucket, Key: key }))
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of got.Body as Readable) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return { sha256: hash.digest('hex'), size }
}

export async function readObject (s3: S3Client, key: string): Promise<Buffer> {
  const got = await s3.send(new GetObjectCommand({ Bucket: s3Env.bucket, Key: key }))
  const parts: Buffer[] = []
  for await (const chunk of got.Body as Readable) parts.push(chunk as Buffer)
  return Buffer.concat(parts)
}

/** Aborts the uploads and deletes the objects under a prefix. */
export async function deletePrefix (s3: S3Client, prefix: string): Promise<void> {
  const uploads = (await s3.send(new ListMultipartUploadsCommand({ Bucket: s3Env.bucket, Prefix: prefix }))).Uploads ?? []
  for (const u of uploads) await s3.send(new AbortMultipartUploadCommand({ Bucket: s3Env.bucket, Key: u.Key, UploadId: u.UploadId })).catch(() => {})
  for (const key of await listKeys(s3, prefix)) await s3.send(new DeleteObjectCommand({ Bucket: s3Env.bucket, Key: key }))
}

/** A unique prefix whose objects and uploads are removed when the test ends. */
export function testPrefix (t: Test, label: string): string {
  const prefix = `test/${uniqueName(label)}/`
  t.teardown(async () => {
    const s3 = s3Client()
    await deletePrefix(s3, prefix).catch(() => {})
    s3.destroy()
  })
  return prefix
}

export interface PrivateS3 {
  readonly port: number
  readonly endpoint: string
  start (): Promise<void>
  stop (): Promise<void>
}

/**
 * A versitygw of the test's own (same credentials and bucket as the stack's) on a free port,
 * stopped and purged when the test ends: for tests that stop S3.
 */
export async function privateS3 (t: Test, port?: number): Promise<PrivateS3> {
  port ??= await freePort()
  const dir = resolve('.sluice', uniqueName('test-s3'))
  const env = { SLUICE_S3_PORT: String(port) }
  const s: PrivateS3 = {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    start: async () => { await stackScript(dir, ['up', 's3'], env) },
    stop: async () => { await stackScript(dir, ['down', 's3'], env) }
  }
  t.teardown(async () => { await stackScript(dir, ['down', '--purge', 's3'], env) })
  await s.start()
  return s
}
