/** EXMIT_TIMEOUT_SECONDS, read and checked before any engine starts. */
import { inputError } from '../errors.ts';

/** EXMIT_TIMEOUT_SECONDS in milliseconds: how long every engine request may take (slow servers, tests); undefined when unset. */
export function timeoutFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env['EXMIT_TIMEOUT_SECONDS'];
  if (raw === undefined || raw === '') return undefined;
  const seconds = Number(raw.trim());
  if (raw.trim() === '' || !Number.isFinite(seconds) || seconds <= 0) {
    throw inputError(`EXMIT_TIMEOUT_SECONDS="${raw}" is not a positive number of seconds`, 'Set it to a number of seconds, as in EXMIT_TIMEOUT_SECONDS=300, or unset it.');
  }
  return seconds * 1000;
}
