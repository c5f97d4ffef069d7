/** The engine's error kinds: each one's exit code and hint, in this one table. */
import { ExitCode, ExmitError, type ErrorKind, type ExitCodeValue } from '../errors.ts';

/** How one kind reaches the user. */
interface KindRule {
  code: ExitCodeValue;
  /** Null: the message says it all. */
  hint: string | null;
}

const BUG_HINT = 'This is a bug in exmit; run again with --verbose and report what it prints.';

/** Exit code and hint of every kind the engine (or the door itself) reports. */
export const ERROR_KINDS: Readonly<Record<ErrorKind, KindRule>> = {
  image: { code: ExitCode.error, hint: 'The server image is incomplete or damaged; collect it again on the server with "exmit collect".' },
  input: { code: ExitCode.error, hint: null },
  environment: { code: ExitCode.error, hint: 'exmit could not read or change this server; run from an elevated 64-bit PowerShell prompt, and again with --verbose to see what PowerShell wrote.' },
  policy: { code: ExitCode.error, hint: 'exmit does not work around execution policy or application control (Group Policy, WDAC/AppLocker); ask for an exception for exmit\'s engine folder or run it where the policy allows.' },
  lock: { code: ExitCode.error, hint: 'Another exmit run is working on this server; wait for it to finish. If its process is gone, the lock file named above can be removed.' },
  // conflict, step and fault: apply decides exit 4 or 5 from whether it could undo; alone they are errors.
  conflict: { code: ExitCode.error, hint: 'The server changed since the plan was made; run the command again to plan from what is there now.' },
  step: { code: ExitCode.error, hint: null },
  fault: { code: ExitCode.error, hint: null },
  internal: { code: ExitCode.error, hint: BUG_HINT },
};

/** The kind for a name the engine sent; unknown names are internal. */
export function errorKindOf(name: unknown): ErrorKind {
  return typeof name === 'string' && Object.hasOwn(ERROR_KINDS, name) ? (name as ErrorKind) : 'internal';
}

/** The user-facing error of an engine error answer: its message (prefixed by the file it names), with the kind's exit code and hint. */
export function engineError(kind: ErrorKind, message: string, file: string | null = null, hint?: string): ExmitError {
  const rule = ERROR_KINDS[kind];
  const where = file !== null && file !== '' && !message.startsWith(file) ? `${file}: ` : '';
  return new ExmitError(rule.code, `${where}${message}`, hint ?? rule.hint ?? undefined, kind);
}
