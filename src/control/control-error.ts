/** A request the control plane refuses: an HTTP status, a stable code and a message naming why. */
export class ControlError extends Error {
  readonly statusCode: 400 | 404 | 409 | 503
  readonly code: string

  constructor (statusCode: ControlError['statusCode'], code: string, message: string) {
    super(message)
    this.name = 'ControlError'
    this.statusCode = statusCode
    this.code = code
  }
}
