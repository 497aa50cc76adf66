/**
 * One error base class for the whole tool. Each subclass maps to one exit code; only `main()`
 * turns an error into an exit code (see `exitCodeFor`).
 */
export type ErrorKind = 'input' | 'environment' | 'install' | 'policy' | 'interrupted';

export class SandboxError extends Error {
  readonly kind: ErrorKind = 'install';
  readonly code: string;
  readonly hint: string | undefined;

  constructor(code: string, message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      kind: this.kind,
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.cause instanceof Error ? { cause: this.cause.message } : {}),
    };
  }
}

/** Bad input from the user: lockfile, options, policy file. Exit 2. */
export class InputError extends SandboxError {
  override readonly kind = 'input' as const;
}

/** The machine cannot do the job: no engine, no image, upstream down. Exit 3. */
export class EnvironmentError extends SandboxError {
  override readonly kind = 'environment' as const;
}

/** The install could not be judged: pip failed, the run broke. Exit 4. */
export class InstallError extends SandboxError {
  override readonly kind = 'install' as const;
}

/** The signals that end a run cleanly: Ctrl-C, a kill, and a closed terminal (SIGHUP). */
export type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP';

/** SIGINT/SIGTERM/SIGHUP arrived; cleanup has run. Exit 130/143/129. */
export class InterruptedError extends SandboxError {
  override readonly kind = 'interrupted' as const;
  readonly signal: StopSignal;
  constructor(signal: StopSignal) {
    super('interrupted', `interrupted by ${signal}`);
    this.signal = signal;
  }
}

export const EXIT = {
  pass: 0,
  policyFail: 1,
  input: 2,
  environment: 3,
  install: 4,
  sigint: 130,
  sigterm: 143,
  sighup: 129,
} as const;

/** 128 + the signal's number, as a shell reports a process the signal ended. */
export function exitCodeForSignal(signal: StopSignal): number {
  return signal === 'SIGINT' ? EXIT.sigint : signal === 'SIGHUP' ? EXIT.sighup : EXIT.sigterm;
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof InterruptedError) return exitCodeForSignal(error.signal);
  if (error instanceof SandboxError) {
    switch (error.kind) {
      case 'input':
        return EXIT.input;
      case 'environment':
        return EXIT.environment;
      case 'policy':
        return EXIT.policyFail;
      default:
        return EXIT.install;
    }
  }
  return EXIT.install;
}
