/** Reading a file the catalog commands were given, with a size limit and a one-line error. */
import { readFileSync } from 'node:fs';
import { inputError } from '../errors.ts';

/** The file's bytes; an error naming it when it cannot be read or is over `maxBytes`. */
export function readBounded(file: string, maxBytes: number, what: string): Buffer {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw inputError(`${what} ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'Check the path.');
  }
  if (bytes.length > maxBytes) throw inputError(`${file}: ${bytes.length} bytes, over the limit of ${maxBytes} bytes for a ${what}`);
  return bytes;
}

/** Adds a repeatable option's value to the earlier ones. */
export function collectRepeated(value: string, previous: string[]): string[] {
  return [...previous, value];
}
