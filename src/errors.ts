/** Exit codes of the contract (product.md, "Exit codes"). */
export const ExitCode = {
  ok: 0,
  error: 1,
  usage: 2,
  exposed: 3,
  failedUndone: 4,
  failedNotUndone: 5,
  /** Ended by SIGHUP (the terminal closed): 128 + 1, as shells report it. */
  hangup: 129,
  /** Ended by Ctrl-C (SIGINT): 128 + 2. */
  interrupted: 130,
  /** Ended by SIGTERM: 128 + 15. */
  terminated: 143,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** What went wrong, as the engine names it (docs/architecture.md, "Engine protocol"); src/powershell/errors.ts maps each to an exit code and hint. */
export type ErrorKind = 'image' | 'input' | 'environment' | 'policy' | 'lock' | 'conflict' | 'step' | 'fault' | 'internal';

/** An error meant for the user: carries the exit code, a one-line message, a hint and, when known, its kind. Only the CLI entry prints it. */
export class ExmitError extends Error {
  readonly code: ExitCodeValue;
  readonly hint: string | undefined;
  readonly kind: ErrorKind | undefined;
  /** Structured facts the engine attached (apply: which step failed, whether the run was undone). */
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ExitCodeValue, message: string, hint?: string, kind?: ErrorKind, details?: Record<string, unknown>) {
    super(message);
    this.name = 'ExmitError';
    this.code = code;
    this.hint = hint;
    this.kind = kind;
    this.details = details;
  }
}

/** A user's mistake in how the command was called (exit 2). */
export function usageError(message: string, hint?: string): ExmitError {
  return new ExmitError(ExitCode.usage, message, hint);
}

/** Bad input, unreadable file, failed engine: exit 1, nothing changed. */
export function inputError(message: string, hint?: string): ExmitError {
  return new ExmitError(ExitCode.error, message, hint);
}
