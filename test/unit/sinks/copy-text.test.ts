import fc from 'fast-check'
import { test } from 'tap'
import { CopyText, lineChunks } from '../../../src/sinks/timescale/copy-text.ts'
import type { TextLine } from '../../../src/sinks/timescale/copy-text.ts'

const line = fc.string({ unit: fc.constantFrom('a', 'é', '\u{1F600}', '\\', 'x', '€', ' '), maxLength: 40 }).map((s) => s + '\n')

test('lines appended as bytes read back as the same strings and UTF-8 bytes', async (t) => {
  fc.assert(fc.property(fc.array(line, { maxLength: 60 }), (lines) => {
    const text = new CopyText()
    for (const l of lines) text.append(l)
    return text.count === lines.length && lines.every((l, i) => text.line(i) === l && text.bytes(i).equals(Buffer.from(l)))
  }), { numRuns: 300 })
  t.pass('300 line sets')
})

test('COPY data of any lines in order is their bytes, whole runs of one block as one slice', async (t) => {
  fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 60 }), fc.array(fc.boolean(), { minLength: 60, maxLength: 60 }), (lines, keep) => {
    const a = new CopyText()
    const b = new CopyText()
    for (const l of lines) { a.append(l); b.append(l) }
    // a batch's rows from two buffers, some dropped (in-batch duplicates, rejected rows)
    const rows: TextLine[] = []
    const expected: string[] = []
    for (const [text, k] of [[a, 0], [b, 1]] as const) {
      lines.forEach((l, i) => {
        if (keep[(i + k) % keep.length] === true) { rows.push({ text, index: i }); expected.push(l) }
      })
    }
    const data = Buffer.concat([...lineChunks(rows)])
    return data.equals(Buffer.from(expected.join('')))
  }), { numRuns: 300 })
  const text = new CopyText()
  const all: TextLine[] = []
  for (let i = 0; i < 5000; i++) { text.append(`row ${i}\tvalue é\n`); all.push({ text, index: i }) }
  t.equal([...lineChunks(all)].length, 2, '5,000 lines of a buffer without gaps: one slice per block (16 KiB, then 1 MiB)')
})

test('all lines of a buffer as COPY data: their bytes in order, one slice per block', async (t) => {
  fc.assert(fc.property(fc.array(fc.oneof(line, fc.constant('é'.repeat(40_000) + '\n')), { maxLength: 80 }), (lines) => {
    const text = new CopyText()
    for (const l of lines) text.append(l)
    const chunks = [...text.chunks()]
    return Buffer.concat(chunks).equals(Buffer.from(lines.join(''))) && chunks.length <= Math.max(1, lines.length) && chunks.every((c) => c.length > 0)
  }), { numRuns: 300 })
  const text = new CopyText()
  for (let i = 0; i < 5000; i++) text.append(`row ${i}\tvalue é\n`)
  t.equal([...text.chunks()].length, 2, '5,000 lines: one slice per block (16 KiB, then 1 MiB)')
  t.same([...new CopyText().chunks()], [], 'no lines, no data')
})

test('a released text\'s blocks hold the next texts\' lines, and it holds nothing more', async (t) => {
  const a = new CopyText()
  for (let i = 0; i < 40_000; i++) a.append(`old ${i}\tvalue é\n`) // ~0.8 MiB past the first block
  const before = [...a.chunks()].map((c) => c.buffer)
  a.release()
  t.equal(a.count, 0, 'no lines')
  t.equal(a.byteLength, 0)
  t.same([...a.chunks()], [], 'no data')
  fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 200 }), (lines) => {
    const b = new CopyText()
    // past the first block: into a block the released text had
    b.append('x'.repeat(20_000) + '\n')
    for (const l of lines) b.append(l)
    const ok = lines.every((l, i) => b.line(i + 1) === l) && Buffer.concat([...b.chunks()]).equals(Buffer.from('x'.repeat(20_000) + '\n' + lines.join('')))
    b.release()
    return ok
  }), { numRuns: 200 })
  const c = new CopyText()
  c.append('y'.repeat(20_000) + '\n')
  t.ok(before.includes([...c.chunks()][0]?.buffer as ArrayBuffer), 'a new text\'s second block is one the first text released')
})

test('a line longer than a block gets a block of its own', async (t) => {
  const text = new CopyText()
  const long = 'é'.repeat(700_000) + '\n'
  text.append('short\n')
  text.append(long)
  text.append('after\n')
  t.equal(text.line(1), long)
  t.same([text.line(0), text.line(2)], ['short\n', 'after\n'])
  t.ok(Buffer.concat([...lineChunks([0, 1, 2].map((index) => ({ text, index })))]).equals(Buffer.from('short\n' + long + 'after\n')), 'the COPY data of all three')
})
