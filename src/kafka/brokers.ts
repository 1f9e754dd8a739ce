/** The broker list, parsed one way for every client: `a:9092, b:9092` or an array of host:port. */
export function parseBrokers (brokers: string | readonly string[]): string[] {
  const list = typeof brokers === 'string' ? brokers.split(',') : [...brokers]
  return list.map((b) => b.trim()).filter((b) => b !== '')
}

/** The same list as librdkafka's `bootstrap.servers` (comma-separated). */
export function brokerList (brokers: string | readonly string[]): string {
  return parseBrokers(brokers).join(',')
}
