// Imported first by src/main.ts: a Node.js whose JSON.parse alters escaped object keys stops
// the worker (exit 2) before it starts, unless SLUICE_ALLOW_AFFECTED_RUNTIME=true. The check
// (a fresh process) runs while the other modules load; main.ts awaits it before it starts.
import { allowsAffectedRuntime } from './config/config.ts'
import { checkRuntime } from './runtime.ts'

export const runtimeChecked: Promise<void> = checkRuntime({ version: process.version, allow: allowsAffectedRuntime() }).catch((err: unknown) => {
  const e = err as { code?: string, message: string }
  process.stderr.write(`sluice: ${e.code ?? 'error'}: ${e.message}\n`)
  process.exit(2)
})
