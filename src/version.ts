/** exmit's own version, read from package.json (semver: the catalog's `requires` range is checked against it). */
import { readShipped, SHIPPED } from './sea.ts';

const pkg = JSON.parse(readShipped(SHIPPED.packageJson).toString('utf8')) as { version: string };

/** The installed exmit version. */
export const VERSION: string = pkg.version;
