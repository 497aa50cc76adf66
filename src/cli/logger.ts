import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { redactUrl } from '../proxy/index.js';

export type Verbosity = 'quiet' | 'normal' | 'verbose';

/**
 * A second guard behind redacting at each call site: any of these fields that reaches the log has
 * its credentials removed (`user:password@` dropped from URLs), whatever the caller passed.
 */
export const REDACT = {
  paths: ['upstreams.indexUrl', 'upstreams.extraIndexUrls[*]', 'upstreams[*]', 'indexUrl', 'url', 'upstream.password'],
  censor: (value: unknown, path: string[]): unknown => {
    if (path.at(-1) === 'password') return '[Redacted]';
    return typeof value === 'string' ? redactUrl(value) : value;
  },
};

/** Logs go to stderr; pretty only on a TTY. Results go to stdout, never through the logger. */
export function createLogger(verbosity: Verbosity, color: boolean): Logger {
  const level = verbosity === 'quiet' ? 'warn' : verbosity === 'verbose' ? 'debug' : 'info';
  const options = { level, base: undefined, redact: REDACT };
  if (process.stderr.isTTY) {
    return pino(options, pretty({ destination: 2, sync: true, colorize: color, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}
