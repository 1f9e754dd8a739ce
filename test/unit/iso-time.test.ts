import fc from 'fast-check'
import { test } from 'tap'
import { isoTimeProblem } from '../../src/iso-time.ts'

const pad = (n: number, w: number): string => String(n).padStart(w, '0')

/** An oracle apart from iso-time.ts: the calendar from Date, the limits as documented there. */
function holds (year: number, month: number, day: number, hour: number, minute: number, second: number, fraction: string): boolean {
  const d = new Date(0)
  d.setUTCFullYear(year, month - 1, day)
  const calendar = month >= 1 && month <= 12 && d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day
  return year >= 1 && calendar && hour <= 23 && minute <= 59 && second <= 59 && /^0*$/.test(fraction.slice(6))
}

test('a time is accepted exactly when its date is in the calendar and each part within its limits', async (t) => {
  const parts = fc.record({
    year: fc.oneof(fc.integer({ min: 0, max: 9999 }), fc.constantFrom(0, 1, 1900, 2000, 2024, 2100, 9999)),
    month: fc.integer({ min: 0, max: 13 }),
    day: fc.integer({ min: 0, max: 32 }),
    hour: fc.integer({ min: 0, max: 25 }),
    minute: fc.integer({ min: 0, max: 61 }),
    second: fc.integer({ min: 0, max: 61 }),
    fraction: fc.oneof(fc.constant(''), fc.stringMatching(/^[0-9]{1,8}$/)),
    zone: fc.constantFrom('Z', 'Z', '+01:00', '-15:59')
  })
  let accepted = 0
  fc.assert(fc.property(parts, (p) => {
    const s = `${pad(p.year, 4)}-${pad(p.month, 2)}-${pad(p.day, 2)}T${pad(p.hour, 2)}:${pad(p.minute, 2)}:${pad(p.second, 2)}${p.fraction === '' ? '' : '.' + p.fraction}${p.zone}`
    const ok = isoTimeProblem(s) === null
    if (ok) accepted++
    return ok === holds(p.year, p.month, p.day, p.hour, p.minute, p.second, p.fraction)
  }), { numRuns: 5000 })
  t.ok(accepted > 500, `${accepted} of 5,000 accepted`)
})

test('the shapes around the common one', async (t) => {
  t.equal(isoTimeProblem('2024-02-29T23:59:59.999999Z'), null)
  t.equal(isoTimeProblem('2025-02-25 10:45:00Z'), null, 'a space for the T')
  t.equal(isoTimeProblem('2025-02-25T10:45Z'), null, 'no seconds')
  t.match(isoTimeProblem('2025-02-29T10:45:00Z'), /has day 29/)
  t.match(isoTimeProblem('2025-02-25T10:45:00.Z'), /not an ISO-8601 time/, 'a point without digits')
  t.match(isoTimeProblem('2025-02-25T10:45:00.1234567Z'), /7 fractional digits/)
  t.match(isoTimeProblem('2025-02-25T10:45:00z'), /not an ISO-8601 time/, 'a lower-case z')
  t.match(isoTimeProblem('２025-02-25T10:45:00Z'), /not an ISO-8601 time/, 'a digit that is not ASCII')
  t.match(isoTimeProblem('2025-02-25T24:00:00Z'), /hour 24/)
})
