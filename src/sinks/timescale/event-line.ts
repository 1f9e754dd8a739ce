import type { KafkaMessage } from '../../kafka/types.ts'
import type { EntityEvent } from '../../model/event.ts'
import { eventCopyRow, eventLineHead, eventLineTail } from './copy-encoder.ts'
import type { CopyText } from './copy-text.ts'
import { contentStart, idLineOf, idLineWith } from './event-ids.ts'

/**
 * Appends an event's log COPY line (eventCopyRow's, byte for byte) to `text` and returns its
 * sluice_event_ids line. When the event's JSON columns are the producer's text and no byte of
 * the message needs COPY escaping (EventSource.spans), they are copied from the message into
 * the line's block as bytes: never decoded into strings, joined, scanned for escapes and
 * encoded back. Anything else goes through the line as a string.
 */
export function appendEventLine (text: CopyText, e: EntityEvent, origin: Pick<KafkaMessage, 'topic' | 'partition' | 'offset'>): string {
  const s = e.source
  const spans = s !== undefined && s.payload === e.payload && (e.metadata === null || s.metadata === e.metadata) ? s.spans : null
  if (spans === null || (e.metadata !== null && spans.metadataStart === -1)) {
    const line = eventCopyRow(e, origin)
    text.append(line)
    return idLineOf(line)
  }
  const head = eventLineHead(e, origin)
  const tail = eventLineTail(e)
  const metadata = e.metadata === null ? -1 : spans.metadataStart
  text.begin(3 * (head.length + tail.length) + spans.payloadEnd - spans.payloadStart + (metadata === -1 ? 3 : spans.metadataEnd - metadata + 1))
  text.put(head)
  text.copy(spans.buf, spans.payloadStart, spans.payloadEnd)
  if (metadata === -1) {
    text.put('\t\\N')
  } else {
    text.put('\t')
    text.copy(spans.buf, metadata, spans.metadataEnd)
  }
  text.put(tail)
  text.end()
  return idLineWith(head, contentStart(head))
}
