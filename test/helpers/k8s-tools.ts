// The deployment tools (scripts/tools.sh) and the k8s/ manifests, for the Kubernetes tests.
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The installed tool's path (the test command installs them first: scripts/tools.sh install). */
export function toolPath (name: 'kustomize' | 'kubeconform' | 'promtool' | 'hadolint' | 'k8s-schemas'): string {
  try {
    return execFileSync('scripts/tools.sh', ['path', name], { encoding: 'utf8' }).trim()
  } catch (err) {
    throw new Error(`${name} is not installed: run scripts/tools.sh install (${(err as Error).message})`)
  }
}

export interface Ran { code: number, stdout: string, stderr: string }

/** Runs a command to its end; a non-zero exit is a result, not an exception. */
export async function runTool (file: string, args: string[], opts: { input?: string, cwd?: string } = {}): Promise<Ran> {
  const child = run(file, args, { cwd: opts.cwd, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 })
  if (opts.input !== undefined) { child.child.stdin?.end(opts.input) }
  try {
    const { stdout, stderr } = await child
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: number, stdout?: string, stderr?: string, message: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message }
  }
}

export const overlays = ['base', 'overlays/keda', 'overlays/hpa', 'overlays/monitoring'] as const

/** `kustomize build k8s/<dir>`, failing loudly. */
export async function build (dir: string): Promise<string> {
  const r = await runTool(toolPath('kustomize'), ['build', `k8s/${dir}`])
  if (r.code !== 0) throw new Error(`kustomize build k8s/${dir} failed: ${r.stderr}`)
  return r.stdout
}

/** kubeconform, strict, on YAML given on stdin: core schemas of the Kubernetes version the schema package knows, CRDs. */
export async function kubeconform (yaml: string): Promise<Ran & { summary: { valid: number, invalid: number, errors: number, skipped: number } }> {
  const schemas = toolPath('k8s-schemas')
  const r = await runTool(toolPath('kubeconform'), [
    '-strict', '-summary', '-output', 'json', '-kubernetes-version', K8S_VERSION,
    '-schema-location', `${schemas}/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json`,
    '-schema-location', `${schemas}/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json`,
    '-'
  ], { input: yaml })
  let summary = { valid: 0, invalid: 0, errors: 0, skipped: 0 }
  try { summary = JSON.parse(r.stdout).summary } catch { /* the exit code and output tell */ }
  return { ...r, summary }
}

/** The Kubernetes version whose schemas scripts/tools.sh installs (PyPI kubernetes-validate's newest). */
export const K8S_VERSION = '1.37.0'
