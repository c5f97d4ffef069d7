/** Which catalog a run uses: the newest verified one (cached download or bundled), or --catalog. */
import type { Catalog } from './types.ts';
import { loadBundledCatalog } from './parse.ts';
import { inputError } from '../errors.ts';

/** Where the catalog in use came from, as `catalog.source` reports it. */
export type CatalogSource = 'bundled' | 'cache' | 'file' | 'url';

/** The catalog a run uses, with where it came from and what the user should be told. */
export interface ResolvedCatalog {
  catalog: Catalog;
  source: CatalogSource;
  /** Path or URL it was read from. */
  location: string;
  warnings: string[];
}

/** What the caller wants the catalog for: reading (audit, list) or changing a server (apply). */
export interface CatalogRequest {
  catalog: string | undefined;
  stateDir: string | undefined;
  allowUnsigned?: boolean | undefined;
  purpose: 'read' | 'apply';
}

/** Picks the catalog for this run. */
export async function resolveCatalog(request: CatalogRequest): Promise<ResolvedCatalog> {
  if (request.catalog !== undefined) {
    throw inputError(`--catalog ${request.catalog}: catalogs from outside the package need signature verification, which this build does not have yet`);
  }
  const catalog = loadBundledCatalog();
  return { catalog, source: 'bundled', location: 'mitigations/catalog.xml', warnings: [] };
}
