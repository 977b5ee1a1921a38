/** `@commerce/gateway/limits`: the operation limits and the variables that set them, for `pnpm schema:check`. */
export { readOperationLimits } from './config.ts';
export {
  DEFAULT_OPERATION_LIMITS,
  checkOperationLimits,
  exceededLimits,
  measureOperation,
  type ExceededLimit,
  type OperationLimits,
  type OperationMeasure,
} from './limits.ts';
