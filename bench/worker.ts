// The worker as every benchmark starts it: bin/sluice (the runtime settings it is measured
// with) on this Node, with the environment plus a benchmark's SLUICE_* settings.
import { spawn } from 'node:child_process'
import type { ChildProcess, StdioOptions } from 'node:child_process'

export function spawnWorker (settings: Record<string, string>, stdio: StdioOptions = ['ignore', 'pipe', 'pipe']): ChildProcess {
  return spawn('bin/sluice', [], { env: { ...process.env, SLUICE_NODE: process.execPath, ...settings }, stdio })
}
