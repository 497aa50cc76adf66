import type { Logger } from 'pino';
import type { ContainerClient } from '../runtime/port.js';

/** What every command gets from `main()`: no globals. */
export interface CommandContext {
  logger: Logger;
  /** Aborted on SIGINT/SIGTERM/SIGHUP with an InterruptedError as its reason. */
  signal: AbortSignal;
  /** Colour on stdout: a TTY, and neither NO_COLOR nor --no-color. */
  color: boolean;
  /** The container engine, made on first use: commands never construct one. */
  engine: () => ContainerClient;
}
