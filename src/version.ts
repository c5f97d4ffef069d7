/** exmit's own version, read from package.json (semver: the catalog's `requires` range is checked against it). */
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/** The installed exmit version. */
export const VERSION: string = pkg.version;
