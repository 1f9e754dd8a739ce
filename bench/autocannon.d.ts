// The part of autocannon's API bench/http.ts uses (autocannon ships no types).
declare module 'autocannon' {
  import type { EventEmitter } from 'node:events'
  namespace autocannon {
    interface Request {
      method?: string
      path?: string
      headers?: Record<string, string>
      body?: string
      setupRequest?: (req: Request) => Request
    }
    interface Options {
      url: string
      connections?: number
      overallRate?: number
      duration?: number
      timeout?: number
      requests?: Request[]
    }
    interface Result { errors: number, timeouts: number, non2xx: number }
  }
  function autocannon (opts: autocannon.Options): EventEmitter
  export default autocannon
}
