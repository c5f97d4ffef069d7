/**
 * Which catalog a run uses: the newest verified one (the cached download when its serial is higher
 * than the bundled one's, else the bundled one), or --catalog FILE|URL, verified first.
 */
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import type { Catalog } from './types.ts';
import { loadBundledCatalog, MAX_CATALOG_BYTES } from './parse.ts';
import { readShipped, SHIPPED } from '../sea.ts';
import { ExmitError, inputError, usageError } from '../errors.ts';
import { readConfig } from '../state/config.ts';
import { readCache, sha256Hex, type CacheEntry } from '../state/cache.ts';
import { cachePath, resolveStateDir } from '../state/paths.ts';
import { FeedUnreachableError, checkFeedUrl, tlsEnvironmentWarnings } from '../trust/download.ts';
import { readTrustFiles } from '../trust/files.ts';
import { guardStateRead, guardStateWrite, type WindowsHost } from '../state/windows-acl.ts';
import { checkFloor, floorWarning, raiseFloor, readFloor } from '../state/floor.ts';
import { withStateLock } from '../state/lock.ts';
import { mergeTrustedKeys, type TrustedKey } from '../trust/keys.ts';
import { DEFAULT_TIMEOUT_SECONDS, downloadCatalog, winHttpProxyOf } from '../trust/update.ts';
import { checkSerial, verifyCatalog, type PreviousCatalog, type VerifiedCatalog } from '../trust/verify.ts';
import { ensureStateDir } from '../state/secure.ts';

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
  /** Extra public key files trusted for this run (--trust). */
  trust?: string[] | undefined;
  /** The clock (tests). */
  now?: Date | undefined;
  /** Environment for proxies (tests). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Windows: the engine that checks the state folder's ACL and reads the WinHTTP proxy (null elsewhere). */
  windows?: WindowsHost | null | undefined;
}

/** Days after which the bundled catalog is old enough to warn about. */
export const BUNDLED_STALE_DAYS = 90;

/** Picks the catalog for this run; every catalog from outside the package is verified first. */
export async function resolveCatalog(request: CatalogRequest): Promise<ResolvedCatalog> {
  const now = request.now ?? new Date();
  const allowUnsigned = request.allowUnsigned === true;
  if (allowUnsigned && request.purpose === 'apply') {
    throw usageError('--allow-unsigned is refused by apply: an unsigned catalog may be used for authoring and dry runs only', 'Sign the catalog ("exmit catalog sign FILE --key KEY"), or run apply with --dry-run.');
  }
  const stateDir = resolveStateDir(request.stateDir);
  await guardStateRead(stateDir, request.windows ?? null);
  const config = readConfig(stateDir);
  const warnings: string[] = [];
  // Keys trusted now: config.json's and this run's --trust, never the key a cache recorded.
  const keys = mergeTrustedKeys(config.trustedKeys, readTrustFiles(request.trust ?? []));
  const newest = () => newestVerified(stateDir, keys, now, warnings);

  if (request.catalog !== undefined && request.catalog !== '') {
    const base = newest();
    const previous = previousOf(base);
    if (/^(https?|file):/i.test(request.catalog)) {
      const url = checkFeedUrl(request.catalog, false);
      warnings.push(...tlsEnvironmentWarnings(request.env ?? process.env));
      // The admin asked for this catalog: a feed that cannot be reached is an error, never a silent switch to another catalog.
      try {
        const winHttp = await winHttpProxyOf(request.windows ?? null, config.proxy, request.env ?? process.env);
        const downloaded = await downloadCatalog(
          url,
          { proxy: config.proxy, ca: null, timeoutMs: DEFAULT_TIMEOUT_SECONDS * 1000, allowInsecure: false, env: request.env, winHttp },
          null,
          { keys, now, allowExpired: false, allowUnsigned, previous: null, unsignedOption: request.purpose === 'read' },
        );
        if (downloaded === 'not-modified') throw new FeedUnreachableError(`${url.href}: unexpected 304 Not Modified`);
        await judgeOutside(downloaded.verified, previous, url.href, stateDir, request, warnings);
        if (downloaded.verified.key === null) warnings.push(`${url.href} is unsigned (--allow-unsigned): not verified, read-only use`);
        return { catalog: downloaded.verified.catalog, source: 'url', location: url.href, warnings };
      } catch (error) {
        if (!(error instanceof FeedUnreachableError)) throw error;
        throw new FeedUnreachableError(`--catalog ${error.message}`, `Check the URL, the proxy (HTTPS_PROXY/NO_PROXY, or proxy in config.json) and the firewall; or leave out --catalog to use the newest verified catalog (the ${base.source === 'cache' ? 'cached' : 'bundled'} one, serial ${base.catalog.serial}).`);
      }
    }
    const file = path.resolve(request.catalog);
    const bytes = readCatalogFile(file);
    const sigFile = `${file}.sig`;
    const signatureText = readOptionalText(sigFile);
    const verified = verifyCatalog({ bytes, signatureText, what: file, sigWhat: sigFile, keys, now, allowExpired: false, allowUnsigned, previous: null, unsignedOption: request.purpose === 'read' });
    await judgeOutside(verified, previous, file, stateDir, request, warnings);
    if (verified.key === null) warnings.push(`${file} is unsigned (--allow-unsigned): not verified, read-only use`);
    return { catalog: verified.catalog, source: 'file', location: file, warnings };
  }
  const chosen = newest();
  return { ...chosen, warnings };
}

interface Base {
  catalog: Catalog;
  source: 'bundled' | 'cache';
  location: string;
  sha256: string;
}

/** The newest verified catalog: the cache when it verifies under the keys trusted now and its serial is above the bundled one's, else the bundled one. */
function newestVerified(stateDir: string, keys: TrustedKey[], now: Date, warnings: string[]): Base {
  const bundled = loadBundledCatalog();
  const bundledBase: Base = { catalog: bundled, source: 'bundled', location: 'mitigations/catalog.xml', sha256: sha256Hex(readShipped(SHIPPED.catalog)) };
  const entry = readCache(stateDir);
  let cached: Base | null = null;
  if (entry !== null) cached = verifyCacheEntry(entry, stateDir, keys, now, warnings);
  if (cached !== null && cached.catalog.serial > bundled.serial) return cached;
  const ageDays = (now.getTime() - Date.parse(`${bundled.published}T00:00:00Z`)) / 86_400_000;
  if (ageDays > BUNDLED_STALE_DAYS) {
    warnings.push(`the bundled catalog (serial ${bundled.serial}, published ${bundled.published}) is more than ${BUNDLED_STALE_DAYS} days old and no newer catalog is cached: run "exmit catalog update", or update exmit`);
  }
  return bundledBase;
}

/** Re-verifies the cached catalog (signature under the keys trusted now, version, expiry); null with a warning when it no longer passes, so removing a key from trustedKeys stops its catalog being used. */
function verifyCacheEntry(entry: CacheEntry, stateDir: string, keys: TrustedKey[], now: Date, warnings: string[]): Base | null {
  const file = cachePath(stateDir);
  try {
    const verified = verifyCatalog({
      bytes: entry.catalog,
      signatureText: entry.signature,
      what: `cached catalog ${file}`,
      sigWhat: `its signature`,
      keys,
      now,
      allowExpired: false,
      allowUnsigned: false,
      previous: null,
    });
    return { catalog: verified.catalog, source: 'cache', location: file, sha256: verified.sha256 };
  } catch (error) {
    if (!(error instanceof ExmitError)) throw error;
    warnings.push(`${error.message}: not used`);
    return null;
  }
}

function previousOf(base: Base): PreviousCatalog {
  return { serial: base.catalog.serial, sha256: base.sha256, label: base.source === 'cache' ? 'the cached catalog' : 'the bundled catalog' };
}

/**
 * Judges a verified catalog from outside the package against the newest one in use and the serial
 * floor: an older (or same-serial, other-content) catalog may be read, never applied. A signed
 * catalog above the floor raises it.
 */
async function judgeOutside(verified: VerifiedCatalog, previous: PreviousCatalog, what: string, stateDir: string, request: CatalogRequest, warnings: string[]): Promise<void> {
  const before = warnings.length;
  checkOlder(verified.catalog, verified.sha256, previous, what, request.purpose, warnings);
  const floor = readFloor(stateDir);
  const verdict = checkFloor(floor, verified.catalog.serial, verified.sha256, what, request.purpose);
  if (verdict === 'read-only' && floor !== null) {
    if (warnings.length === before) warnings.push(floorWarning(floor, verified.catalog.serial, what));
    return;
  }
  if (verdict !== 'newer' || verified.key === null) return;
  try {
    await guardStateWrite(stateDir, request.windows ?? null);
    ensureStateDir(stateDir);
    await withStateLock(stateDir, () => raiseFloor(stateDir, verified.catalog.serial, verified.sha256));
  } catch (error) {
    if (!(error instanceof ExmitError)) throw error;
    warnings.push(`the serial floor was not raised to ${verified.catalog.serial} (${error.message})`);
  }
}

/** An older (or same-serial, other-content) catalog may be read, never applied. */
function checkOlder(catalog: Catalog, sha256: string, previous: PreviousCatalog, what: string, purpose: 'read' | 'apply', warnings: string[]): void {
  try {
    checkSerial(catalog, sha256, previous, what);
  } catch (error) {
    if (purpose === 'apply' || !(error instanceof ExmitError)) throw error;
    warnings.push(`${error.message.replace(/: refused.*$/, '')}: used read-only (apply refuses it)`);
  }
}

function readCatalogFile(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw inputError(`--catalog ${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'Check the path.');
  }
  try {
    const size = fstatSync(fd).size;
    if (size > MAX_CATALOG_BYTES) throw inputError(`${file}: ${size} bytes, over the limit of ${MAX_CATALOG_BYTES} bytes for a catalog`);
    const buffer = Buffer.alloc(size);
    const n = size === 0 ? 0 : readSync(fd, buffer, 0, size, 0);
    return buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function readOptionalText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw inputError(`${file} cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
}
