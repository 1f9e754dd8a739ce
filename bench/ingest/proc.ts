// CPU seconds and peak RSS of processes, from /proc (Linux): the benchmark's own accounting.
import { readFileSync, readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

const TICKS = 100 // USER_HZ on Linux

interface Stat { ppid: number, self: number, children: number }

function stat (pid: number): Stat | null {
  let text: string
  try { text = readFileSync(`/proc/${pid}/stat`, 'utf8') } catch { return null }
  // the command name may hold spaces and parentheses: fields start after the last ')'
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return {
    ppid: Number(f[1]),
    self: (Number(f[11]) + Number(f[12])) / TICKS, // utime + stime
    children: (Number(f[13]) + Number(f[14])) / TICKS // cutime + cstime: children already reaped
  }
}

/** The pid in a service's pid file of the local stack (scripts/stack.sh, e.g. `kafka/kafka.pid`), or null. */
export function stackPid (file: string): number | null {
  const dir = process.env.SLUICE_STACK_DIR
  if (dir === undefined) return null
  try {
    const pid = Number(readFileSync(`${dir}/${file}`, 'utf8').trim())
    return Number.isInteger(pid) && pid > 0 ? pid : null
  } catch { return null }
}

/** Core-seconds the whole machine spent busy since boot (/proc/stat: all but idle and iowait). */
export function machineBusySeconds (): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] as string).trim().split(/\s+/).slice(1, 9).map(Number)
  return (f.reduce((a, b) => a + b, 0) - (f[3] as number) - (f[4] as number)) / TICKS
}

/** A process's own CPU seconds (user + system), or null once it is gone. */
export function cpuSeconds (pid: number): number | null {
  return stat(pid)?.self ?? null
}

/** Peak resident set (VmHWM) in MiB, or null once the process is gone. */
export function peakRssMiB (pid: number): number | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
  } catch { return null }
}

/**
 * CPU seconds of a server and every process it forked, living or gone: its own, what its
 * reaped children used (cutime/cstime) and what its living children used so far. For
 * PostgreSQL's postmaster this counts every backend, including those of closed connections
 * and the background workers. Monotonic, so the difference of two readings is what ran in
 * between.
 */
export function treeCpuSeconds (pid: number): number {
  return tree(pid).cpu
}

function tree (pid: number): { cpu: number, children: Set<number> } {
  let cpu = 0
  const children = new Set<number>()
  for (const name of readdirSync('/proc')) {
    const child = Number(name)
    if (!Number.isInteger(child) || child === pid) continue
    const s = stat(child)
    if (s !== null && s.ppid === pid) { cpu += s.self; children.add(child) }
  }
  // the server itself last: a child reaped during the scan was either seen in it (and is
  // counted twice only in a reading settledTreeCpuSeconds discards, its pid being new) or is
  // in the reaped children's time read now; read first, a child reaped between the two reads
  // was in neither (a psql round's PG CPU 0.1 s)
  const root = stat(pid)
  if (root === null) throw new Error(`process ${pid} is gone`)
  return { cpu: cpu + root.self + root.children, children }
}

/**
 * treeCpuSeconds once every child the server has was there `before` (up to `waitMs`): a
 * backend whose client just left is still exiting, and its CPU is counted (as reaped) only
 * once the postmaster collected it. By pid, not by count: an autovacuum worker that ended
 * meanwhile made a count look settled while the backend was still exiting (PG CPU 0.1 s).
 */
export async function settledTreeCpuSeconds (pid: number, before: ReadonlySet<number>, waitMs = 3000): Promise<number> {
  const until = performance.now() + waitMs
  for (;;) {
    const t = tree(pid)
    if ([...t.children].every((c) => before.has(c)) || performance.now() > until) return t.cpu
    await sleep(20)
  }
}

/** The child processes a server has now. */
export function childPids (pid: number): Set<number> {
  return tree(pid).children
}

/** The parent of a process (e.g. the postmaster of a PostgreSQL backend). */
export function parentPid (pid: number): number {
  const s = stat(pid)
  if (s === null) throw new Error(`process ${pid} is gone`)
  return s.ppid
}

/** Samples a process every `everyMs` until stopped: last CPU seconds and peak RSS seen. */
export class ProcessSampler {
  cpu = 0
  rss = 0
  readonly #pid: number
  readonly #timer: NodeJS.Timeout

  constructor (pid: number, everyMs = 50) {
    this.#pid = pid
    this.sample()
    this.#timer = setInterval(() => this.sample(), everyMs)
  }

  sample (): void {
    const c = cpuSeconds(this.#pid)
    const r = peakRssMiB(this.#pid)
    if (c !== null) this.cpu = c
    if (r !== null && r > this.rss) this.rss = r
  }

  stop (): void {
    this.sample()
    clearInterval(this.#timer)
  }
}
