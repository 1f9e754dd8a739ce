// Imported first by src/main.ts: a Node.js whose JSON.parse alters escaped object keys stops
// the worker (exit 2) before any other module loads, unless SLUICE_ALLOW_AFFECTED_RUNTIME=true.
import { allowsAffectedRuntime } from './config/config.ts'
import { checkRuntime } from './runtime.ts'

try {
  checkRuntime({ version: process.version, allow: allowsAffectedRuntime() })
} catch (err) {
  const e = err as { code?: string, message: string }
  process.stderr.write(`sluice: ${e.code ?? 'error'}: ${e.message}\n`)
  process.exit(2)
}
