// Runs scripts/stack.sh for a test's private server (its own stack directory and ports).
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** `scripts/stack.sh <args>` with SLUICE_STACK_DIR=dir and the extra variables; a failure says which. */
export async function stackScript (dir: string, args: string[], env: Record<string, string>): Promise<void> {
  try {
    await run('scripts/stack.sh', args, { env: { ...process.env, SLUICE_STACK_DIR: dir, ...env }, timeout: 120_000 })
  } catch (err) {
    const e = err as { stderr?: string, message: string }
    throw new Error(`scripts/stack.sh ${args.join(' ')} (dir ${dir}, ${JSON.stringify(env)}) failed: ${e.stderr ?? e.message}`)
  }
}
