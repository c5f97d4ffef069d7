/** stdout is the result: one JSON document, or the human rendering on stdout. */
import type { RunOutput } from './context.ts';
import type { ResolvedCatalog } from './catalog/source.ts';
import { shippedName, SHIPPED } from './sea.ts';

const processStdout: Pick<RunOutput, 'stdout'> = {
  stdout: (text) => {
    process.stdout.write(text);
  },
};

/** Prints the one JSON document of a --json run. */
export function printJson(value: unknown, output: Pick<RunOutput, 'stdout'> = processStdout): void {
  output.stdout(JSON.stringify(value, null, 2) + '\n');
}

/** Prints human output on stdout. */
export function printText(text: string, output: Pick<RunOutput, 'stdout'> = processStdout): void {
  output.stdout(text.endsWith('\n') ? text : text + '\n');
}

/** The `catalog` object of JSON outputs: where the catalog came from and which serial. */
export interface CatalogHeader {
  source: string;
  serial: number;
  published: string;
  expires: string;
  location: string;
}

/** The `catalog` object of a resolved catalog. */
export function catalogHeader(resolved: ResolvedCatalog): CatalogHeader {
  return { source: resolved.source, serial: resolved.catalog.serial, published: resolved.catalog.published, expires: resolved.catalog.expires, location: resolved.location };
}

/** The --verbose line naming the catalog file a run uses: where it came from, its path or URL, its serial. */
export function catalogUsed(resolved: ResolvedCatalog): string {
  const where = resolved.source === 'bundled' ? shippedName(SHIPPED.catalog) : resolved.location;
  return `catalog: ${resolved.source} ${where} (serial ${resolved.catalog.serial}, published ${resolved.catalog.published})`;
}
