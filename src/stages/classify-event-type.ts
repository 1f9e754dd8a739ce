import type { EntityEvent } from '../model/event.ts'

export interface ClassifyByPrefixOptions {
  /** route name -> event-type prefixes that go there */
  routes: Readonly<Record<string, readonly string[]>>
  /** where every other event goes */
  otherwise: string
}

/** A classifier from event-type prefixes to route names (first match wins). */
export function classifyByEventType (opts: ClassifyByPrefixOptions): (e: EntityEvent) => string {
  const table: Array<[string, string]> = []
  for (const [route, prefixes] of Object.entries(opts.routes)) for (const p of prefixes) table.push([p, route])
  return (e) => {
    for (let i = 0; i < table.length; i++) {
      const [prefix, route] = table[i] as [string, string]
      if (e.eventType.startsWith(prefix)) return route
    }
    return opts.otherwise
  }
}
