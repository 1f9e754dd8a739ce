// moved to src/retry.ts (beside the retry helper); kept for the modules not moved yet
export { backoffDelay } from '../retry.ts'
