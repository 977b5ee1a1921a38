import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { activeRequestId } from './observability/request-context.ts';
import { activeTraceId } from './observability/tracing.ts';

export type { Logger };
/** Where log lines go instead of stdout (tests capture them). */
export type LogDestination = DestinationStream;

/** JSON logs on stdout (or `destination`); a line written inside a request carries its request id and trace id. */
export function createLogger(service: string, level = 'info', destination?: LogDestination): Logger {
  const options: LoggerOptions = {
    level,
    base: { service },
    mixin() {
      const requestId = activeRequestId();
      const traceId = activeTraceId();
      if (!requestId && !traceId) return {};
      return traceId ? (requestId ? { requestId, traceId } : { traceId }) : { requestId };
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
