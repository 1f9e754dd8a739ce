import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { SluiceError } from '../errors.ts'
import type { PipelineContext } from './context.ts'
import type { PipelineDefinition } from './definition.ts'

/** A module in pipelines/ default-exports one of these. */
export type PipelineFactory = (ctx: PipelineContext) => PipelineDefinition<any>

/**
 * Loads each named pipeline once from `<dir>/<name>.ts` (or .js) and maps every topic to its
 * definition. Adding a pipeline is adding a file: the engine does not change.
 */
export async function loadPipelines (dir: string, byTopic: ReadonlyMap<string, string>, ctx: PipelineContext): Promise<Map<string, PipelineDefinition<unknown>>> {
  const built = new Map<string, PipelineDefinition<unknown>>()
  const out = new Map<string, PipelineDefinition<unknown>>()
  for (const [topic, name] of byTopic) {
    let def = built.get(name)
    if (def === undefined) {
      const file = ['.ts', '.js'].map((ext) => join(dir, name + ext)).find((f) => existsSync(f))
      if (file === undefined) throw new SluiceError('SLUICE_ERR_CONFIG', `pipeline "${name}" not found: no ${name}.ts or ${name}.js in ${dir}`)
      let factory: unknown
      try {
        factory = (await import(pathToFileURL(file).href)).default
      } catch (err) {
        throw new SluiceError('SLUICE_ERR_PIPELINE', `pipeline ${file} failed to load: ${(err as Error).message}`, { cause: err })
      }
      if (typeof factory !== 'function') throw new SluiceError('SLUICE_ERR_PIPELINE', `pipeline ${file} must default-export a function (ctx) => definePipeline(...)`)
      def = (factory as PipelineFactory)(ctx)
      if (def.name !== name) throw new SluiceError('SLUICE_ERR_PIPELINE', `pipeline ${file} is named "${def.name}", expected "${name}"`)
      built.set(name, def)
    }
    out.set(topic, def)
  }
  return out
}
