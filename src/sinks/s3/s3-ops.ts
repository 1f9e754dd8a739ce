import { AbortMultipartUploadCommand, ListMultipartUploadsCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3'
import type { UploadPartCommandInput } from '@aws-sdk/client-s3'
import type { S3Config } from '../../config/config.ts'
import { SluiceError, errorMessage } from '../../errors.ts'
import { retry } from '../../retry.ts'

/**
 * An S3 client for the sink: path-style when an endpoint is given, no SDK retries (ours count);
 * over TLS its parts and objects are not hashed for their signature (unsignedPayloads).
 */
export function createS3Client (c: S3Config): S3Client {
  const s3 = new S3Client({
    region: c.region,
    ...(c.endpoint !== null ? { endpoint: c.endpoint, forcePathStyle: true } : {}),
    ...(c.accessKeyId !== null && c.secretAccessKey !== null ? { credentials: { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey } } : {}),
    maxAttempts: 1,
    // a server that accepts the connection and then says nothing must not hold a partition forever
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 }
  })
  return overTls(c.endpoint) ? unsignedPayloads(s3) : s3
}

/** The endpoint is reached over TLS: AWS's own (no endpoint given) or an https:// one. */
export function overTls (endpoint: string | null): boolean {
  return endpoint === null || /^https:/i.test(endpoint)
}

/** the commands whose body is a part or an object */
const UNSIGNED = new Set(['UploadPartCommand', 'PutObjectCommand'])
/** the clients unsignedPayloads made */
const UNSIGNED_CLIENTS = new WeakSet<S3Client>()

/**
 * Parts and objects sent with `x-amz-content-sha256: UNSIGNED-PAYLOAD`: SigV4 then signs the
 * request without a sha256 of its body, which cost 0.24 s of CPU per 256 MiB of snapshot on
 * top of the snapshot's own sha256. Only over TLS, as the AWS SDK for Java and minio-go do:
 * TLS keeps the body from being changed on the way, and the SDK's CRC32 of each body
 * (`x-amz-checksum-crc32`, refused by the server when it does not match) catches corruption;
 * over plain HTTP a CRC32 would not stop a deliberate change, so the payload stays signed.
 */
export function unsignedPayloads (s3: S3Client): S3Client {
  UNSIGNED_CLIENTS.add(s3)
  s3.middlewareStack.add((next, context) => async (args) => {
    const request = args.request as { headers?: Record<string, string> }
    if (UNSIGNED.has(context.commandName ?? '') && request.headers !== undefined) request.headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD'
    return await next(args)
  }, { step: 'build', name: 'sluiceUnsignedPayload' })
  return s3
}

/** Whether the client signs the sha256 of its parts and objects (not unsignedPayloads'). */
export function signsPayloads (s3: S3Client): boolean {
  return !UNSIGNED_CLIENTS.has(s3)
}

/**
 * An UploadPartCommand, signed with the part's sha256 hex when it is given (computed off the
 * main thread: part-hasher.ts): SigV4 takes an `x-amz-content-sha256` the request already has
 * instead of hashing the body itself.
 */
export function uploadPart (input: UploadPartCommandInput, sha256: string | null): UploadPartCommand {
  const command = new UploadPartCommand(input)
  if (sha256 !== null) {
    command.middlewareStack.add((next) => async (args) => {
      (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] = sha256
      return await next(args)
    }, { step: 'build', name: 'sluicePartSha256' })
  }
  return command
}

const FATAL_NAMES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'NoSuchBucket', 'AllAccessDisabled',
  'InvalidBucketName', 'XAdminUserNotFound', 'InvalidToken', 'ExpiredToken', 'CredentialsProviderError'])
const TRANSIENT_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'RequestTimeout', 'RequestTimeTooSkewed',
  'InternalError', 'ServiceUnavailable', 'TimeoutError', 'NoSuchUpload', 'RequestAbortedError', 'AbortError'])
const NETWORK_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH',
  'EAI_AGAIN', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE'])

/**
 * An S3 failure as a SluiceError: credentials and missing buckets are fatal; no response at
 * all (connection refused or reset, timeouts), 5xx, 429/408, throttling and a vanished
 * multipart upload are transient; any other 4xx is the request's fault (poison).
 */
export function classifyS3Error (err: unknown, doing: string): SluiceError {
  if (err instanceof SluiceError) return err
  const e = err as { name?: string, Code?: string, code?: string, $metadata?: { httpStatusCode?: number } } | null
  const name = e?.Code ?? e?.name ?? ''
  const status = e?.$metadata?.httpStatusCode
  const message = `${doing}: ${name !== '' && name !== 'Error' ? name + ': ' : ''}${errorMessage(err)}${status !== undefined ? ` (HTTP ${status})` : ''}`
  if (FATAL_NAMES.has(name) || status === 401 || status === 403) return new SluiceError('SLUICE_ERR_S3_FATAL', message, { cause: err })
  if (TRANSIENT_NAMES.has(name) || (e?.code !== undefined && NETWORK_ERRNOS.has(e.code)) ||
    status === undefined || status >= 500 || status === 429 || status === 408) {
    return new SluiceError('SLUICE_ERR_S3_UNAVAILABLE', message, { cause: err })
  }
  return new SluiceError('SLUICE_ERR_S3_REJECTED', message, { cause: err })
}

export interface RetryPolicy {
  maxAttempts: number
  baseMs: number
  maxMs: number
  /** called before each backoff sleep */
  onRetry?: (doing: string, err: SluiceError, attempt: number, delayMs: number) => void
  /** true: stop retrying now (the work was given up, e.g. its partition was revoked) */
  cancelled?: () => boolean
}

/** Thrown by withS3Retry when `cancelled()` turned true: the caller drops the work quietly. */
export class CancelledError extends Error {
  constructor (doing: string) {
    super(`${doing}: cancelled`)
    this.name = 'CancelledError'
  }
}

/**
 * Runs an S3 request through the shared retry helper (src/retry.ts): transient failures are
 * retried with capped, jittered backoff; after maxAttempts the failure becomes
 * SLUICE_ERR_S3_UPLOAD (poison: the snapshot is given up); fatal and rejected requests are
 * thrown at once; `cancelled()` turning true stops it with a CancelledError.
 */
export async function withS3Retry<T> (doing: string, policy: RetryPolicy, fn: () => Promise<T>): Promise<T> {
  let attempts = 0
  try {
    return await retry(async (attempt) => {
      attempts = attempt
      if (policy.cancelled?.() === true) throw new CancelledError(doing)
      return await fn()
    }, {
      baseMs: policy.baseMs,
      maxMs: policy.maxMs,
      maxAttempts: policy.maxAttempts,
      classify: (raw) => {
        if (raw instanceof CancelledError) throw raw
        const err = classifyS3Error(raw, doing)
        if (err.transient && policy.cancelled?.() === true) throw new CancelledError(doing)
        return err
      },
      onRetry: (err, attempt, delayMs) => policy.onRetry?.(doing, err, attempt, delayMs)
    })
  } catch (err) {
    if (err instanceof SluiceError && err.transient) {
      throw new SluiceError('SLUICE_ERR_S3_UPLOAD', `${err.message}; gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}`, { cause: err })
    }
    throw err
  }
}

export interface OpenUpload { key: string, uploadId: string, initiated: Date | undefined }

/** Every multipart upload in progress under a prefix (all pages). */
export async function listUploads (s3: S3Client, bucket: string, prefix: string): Promise<OpenUpload[]> {
  const out: OpenUpload[] = []
  let keyMarker: string | undefined
  let uploadIdMarker: string | undefined
  for (;;) {
    const page = await s3.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }))
    for (const u of page.Uploads ?? []) {
      if (u.Key !== undefined && u.UploadId !== undefined) out.push({ key: u.Key, uploadId: u.UploadId, initiated: u.Initiated })
    }
    if (page.IsTruncated !== true || (page.NextKeyMarker === undefined && page.NextUploadIdMarker === undefined)) return out
    keyMarker = page.NextKeyMarker
    uploadIdMarker = page.NextUploadIdMarker
  }
}

/** Aborts one multipart upload; one that is already gone (completed or aborted) is fine. */
export async function abortUpload (s3: S3Client, bucket: string, key: string, uploadId: string): Promise<void> {
  try {
    await s3.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
  } catch (err) {
    if ((err as { name?: string }).name !== 'NoSuchUpload') throw err
  }
}

/** Aborts every multipart upload in progress for exactly this key; returns how many. */
export async function abortUploadsOf (s3: S3Client, bucket: string, key: string): Promise<number> {
  const uploads = (await listUploads(s3, bucket, key)).filter((u) => u.key === key)
  for (const u of uploads) await abortUpload(s3, bucket, key, u.uploadId)
  return uploads.length
}
