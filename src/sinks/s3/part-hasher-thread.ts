// The part hasher's thread (part-hasher.ts): sha256 and CRC32 of multipart upload parts, read
// in place from the SharedArrayBuffers the parts are filled in. Requests are answered in the
// order they came, so each object's sha256 is over its parts in order.
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { parentPort } from 'node:worker_threads'
import { crc32 } from 'node:zlib'
import type { HasherReply, HasherRequest } from './part-hasher.ts'

const objects = new Map<number, Hash>()
const port = parentPort
if (port === null) throw new Error('part-hasher-thread.ts runs as a worker thread')

port.on('message', (m: HasherRequest) => {
  if (m.op === 'drop') {
    objects.delete(m.object)
    return
  }
  let whole = objects.get(m.object)
  if (whole === undefined) objects.set(m.object, whole = createHash('sha256'))
  let reply: HasherReply
  if (m.op === 'part') {
    const bytes = new Uint8Array(m.buffer, m.offset, m.length)
    whole.update(bytes)
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(bytes))
    reply = { seq: m.seq, hex: m.own ? createHash('sha256').update(bytes).digest('hex') : null, crc32: crc.toString('base64') }
  } else {
    objects.delete(m.object)
    reply = { seq: m.seq, hex: whole.digest('hex'), crc32: null }
  }
  port.postMessage(reply)
})
