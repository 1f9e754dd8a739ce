import fc from 'fast-check'
import { test } from 'tap'
import { encodeCopyRow, escapeCopyText, unescapeCopyText } from '../../../src/sinks/timescale/copy-encoder.ts'

test('COPY text escaping', async (t) => {
  t.equal(escapeCopyText('plain'), 'plain')
  t.equal(escapeCopyText('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e')
  t.equal(escapeCopyText('\\N'), '\\\\N', 'a literal \\N is not NULL')
  t.equal(escapeCopyText('emoji 🚀 "quotes" \''), 'emoji 🚀 "quotes" \'')
})

test('unescaping gives back the string escaped, whatever it holds', async (t) => {
  // backslashes next to the letters of the escapes, line breaks, characters past the BMP
  const s = fc.string({ unit: fc.constantFrom('\\', 't', 'n', 'r', 'N', '\t', '\n', '\r', 'é', '\u{1F600}', 'a'), maxLength: 30 })
  fc.assert(fc.property(s, (x) => unescapeCopyText(escapeCopyText(x)) === x), { numRuns: 2000 })
  t.equal(unescapeCopyText('a\\tb\\\\n'), 'a\tb\\n', 'an escaped tab, then an escaped backslash before an n')
})

test('a row: NULL, numbers, booleans, JSON, newline at the end', async (t) => {
  t.equal(encodeCopyRow([null, undefined, 1, 2.5, true, '{"a":"x\\ty"}', 'z']), '\\N\t\\N\t1\t2.5\tt\t{"a":"x\\\\ty"}\tz\n')
  t.equal(encodeCopyRow([Number.NaN]), '\\N\n')
})
