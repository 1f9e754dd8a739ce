/**
 * ISO-8601 times as sluice accepts them: what PostgreSQL's timestamptz holds exactly. Used by
 * the validate stage (event timestamps) and the HTTP API (time parameters), so that neither
 * hands PostgreSQL a time it rejects or silently changes:
 *  - a calendar date (year 0001 to 9999, the month's days, 29 February in leap years only);
 *  - hours 00-23 (no 24:00), minutes and seconds 00-59 (no leap second 60);
 *  - at most six fractional digits (microseconds) that are not zero;
 *  - a zone: Z or an offset up to ±15:59 (PostgreSQL's limit).
 */
const ISO = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,32}))?)?(Z|[+-](\d{2})(?::?(\d{2}))?)$/

/** The JSON Schema pattern of the same shape (the calendar and the limits are checkIsoTime's). */
export const isoTimePattern = '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,32})?)?(Z|[+-]\\d{2}(:?\\d{2})?)$'

function daysIn (year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31
}

/** Two decimal digits at i as a number, else -1. */
function twoDigits (s: string, i: number): number {
  const a = s.charCodeAt(i) - 48
  const b = s.charCodeAt(i + 1) - 48
  return a >= 0 && a <= 9 && b >= 0 && b <= 9 ? a * 10 + b : -1
}

/**
 * Whether `s` is `YYYY-MM-DDTHH:MM:SS[.f]Z` (one to six fractional digits) with every part in
 * range: the shape producers send, accepted without the regular expression's match array and
 * strings (bench/hot-path.ts). Any other shape, or a part out of range, is isoTimeProblem's to
 * judge and describe.
 */
function plainUtcTime (s: string): boolean {
  const n = s.length
  if (n < 20 || n > 27 || n === 21 || s.charCodeAt(n - 1) !== 0x5a) return false // Z
  // - - T : :
  if (s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(10) !== 0x54 || s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a) return false
  const century = twoDigits(s, 0)
  const yy = twoDigits(s, 2)
  const month = twoDigits(s, 5)
  const day = twoDigits(s, 8)
  const hour = twoDigits(s, 11)
  const minute = twoDigits(s, 14)
  const second = twoDigits(s, 17)
  if (century < 0 || yy < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return false
  const year = century * 100 + yy
  if (year < 1 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) return false
  if (n === 20) return true
  if (s.charCodeAt(19) !== 0x2e) return false // .
  for (let i = 20; i < n - 1; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** null when `s` is a time timestamptz holds exactly, else why not (one phrase). */
export function isoTimeProblem (s: string): string | null {
  if (plainUtcTime(s)) return null
  const m = ISO.exec(s)
  if (m === null) return 'is not an ISO-8601 time with a zone (e.g. 2025-02-25T10:45:00Z)'
  const [year, month, day, hour, minute] = [m[1], m[2], m[3], m[4], m[5]].map(Number) as [number, number, number, number, number]
  const second = m[6] === undefined ? 0 : Number(m[6])
  if (year < 1) return 'has year 0000, which PostgreSQL does not have (year 1 follows 1 BC)'
  if (month < 1 || month > 12) return `has month ${m[2] as string}`
  if (day < 1 || day > daysIn(year, month)) return `has day ${m[3] as string}, which ${year}-${m[2] as string} does not have`
  if (hour === 24) return 'has hour 24 (24:00), which PostgreSQL stores as the next day\'s 00:00'
  if (hour > 23) return `has hour ${m[4] as string}`
  if (minute > 59) return `has minute ${m[5] as string}`
  if (second === 60) return 'has a leap second (:60), which PostgreSQL stores as the next minute'
  if (second > 59) return `has second ${m[6] as string}`
  const fraction = m[7] ?? ''
  if (fraction.length > 6 && !/^0*$/.test(fraction.slice(6))) return `has ${fraction.length} fractional digits; PostgreSQL keeps microseconds (6) and would round the rest`
  if (m[8] !== 'Z') {
    const oh = Number(m[9])
    const om = m[10] === undefined ? 0 : Number(m[10])
    if (oh > 15 || om > 59) return `has the offset ${m[8] as string}; PostgreSQL accepts offsets up to ±15:59`
  }
  return null
}
