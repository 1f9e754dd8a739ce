import { test } from 'tap'
import { encodeCopyRow, escapeCopyText, unescapeCopyText } from '../../../src/sinks/timescale/copy-encoder.ts'

test('COPY text escaping', async (t) => {
  t.equal(escapeCopyText('plain'), 'plain')
  t.equal(escapeCopyText('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e')
  t.equal(escapeCopyText('\\N'), '\\\\N', 'a literal \\N is not NULL')
  t.equal(escapeCopyText('emoji 🚀 "quotes" \''), 'emoji 🚀 "quotes" \'')
})

test('a row: NULL, numbers, booleans, JSON, newline at the end', async (t) => {
  t.equal(encodeCopyRow([null, undefined, 1, 2.5, true, '{"a":"x\\ty"}', 'z']), '\\N\t\\N\t1\t2.5\tt\t{"a":"x\\\\ty"}\tz\n')
  t.equal(encodeCopyRow([Number.NaN]), '\\N\n')
})

test('unescapeCopyText undoes escapeCopyText', async (t) => {
  for (const s of ['', 'plain', 'a\\b', 'tab\there', 'nl\nand\rcr', '\\t is not a tab', '\\\\', 'é€\u{1F600}\\\t']) {
    t.equal(unescapeCopyText(escapeCopyText(s)), s, JSON.stringify(s))
  }
})
