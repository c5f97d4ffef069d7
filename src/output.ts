/** stdout is the result: one JSON document, or the human rendering on stdout. */

/** Prints the one JSON document of a --json run. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Prints human output on stdout. */
export function printText(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}
