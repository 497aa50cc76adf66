import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';

export type Verbosity = 'quiet' | 'normal' | 'verbose';

/** Logs go to stderr; pretty only on a TTY. Results go to stdout, never through the logger. */
export function createLogger(verbosity: Verbosity, color: boolean): Logger {
  const level = verbosity === 'quiet' ? 'warn' : verbosity === 'verbose' ? 'debug' : 'info';
  const options = { level, base: undefined, redact: { paths: ['upstream.password'], remove: true } };
  if (process.stderr.isTTY) {
    return pino(options, pretty({ destination: 2, sync: true, colorize: color, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' }));
  }
  return pino(options, pino.destination({ fd: 2, sync: true }));
}
