import { pino, type Logger } from 'pino';

export type { Logger };

/** JSON logs on stdout; one child logger per service. */
export function createLogger(service: string, level = 'info'): Logger {
  return pino({ level, base: { service } });
}
