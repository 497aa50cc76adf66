import pino, { type Logger } from 'pino';
import pretty from 'pino-pretty';
import { redactUrl } from '../proxy/index.js';
import { escapeControl, escapeJson } from '../report/escape.js';

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

function escapeStrings(value: unknown): unknown {
  if (typeof value === 'string') return escapeControl(value);
  if (Array.isArray(value)) return value.map(escapeStrings);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, inner]) => [escapeControl(key), escapeStrings(inner)]));
  }
  return value;
}

/**
 * Log lines carry package-controlled text (filenames, URLs, upstream errors). pino's JSON escapes
 * only U+0000 to U+001F, so a C1 control (U+009B is a one-byte CSI to some terminals) or a bidi
 * override would reach the terminal raw. Every line passes here as pino's JSON text, after
 * redaction, so every string value and key of it is covered, nested ones and the message included.
 * For pino-pretty (`pretty`) each string becomes `escapeControl`'s visible form, as in the summary,
 * since pino-pretty prints the values it parses back; for JSON logs `escapeJson` writes the same
 * characters as `\uXXXX`, so the parsed line is unchanged.
 */
export function escapeLogLine(line: string, pretty: boolean): string {
  if (!pretty) return escapeJson(line);
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return escapeControl(line.replace(/\n$/, '')) + '\n';
  }
  return `${JSON.stringify(escapeStrings(parsed))}\n`;
}

/** Where logs go: stderr by default. A test passes its own stream and says whether it is a terminal. */
export interface LogSink {
  isTTY: boolean;
  stream?: NodeJS.WritableStream;
}

/** Logs go to stderr; pretty only on a TTY. Results go to stdout, never through the logger. */
export function createLogger(verbosity: Verbosity, color: boolean, sink: LogSink = { isTTY: process.stderr.isTTY === true }): Logger {
  const level = verbosity === 'quiet' ? 'warn' : verbosity === 'verbose' ? 'debug' : 'info';
  const options = (isPretty: boolean) => ({
    level,
    base: undefined,
    redact: REDACT,
    hooks: { streamWrite: (line: string) => escapeLogLine(line, isPretty) },
  });
  if (sink.isTTY) {
    const destination = sink.stream ?? 2;
    return pino(options(true), pretty({ destination, sync: true, colorize: color, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' }));
  }
  return pino(options(false), sink.stream ?? pino.destination({ fd: 2, sync: true }));
}
