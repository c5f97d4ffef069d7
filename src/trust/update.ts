/** `catalog update` and `--catalog URL`: download a feed's catalog and signature, verify them, and cache what passes. */
import { inputError, ExmitError } from '../errors.ts';
import { MAX_CATALOG_BYTES } from '../catalog/parse.ts';
import { readConfig } from '../state/config.ts';
import { readCache, writeCache, type CacheEntry } from '../state/cache.ts';
import { cachePath } from '../state/paths.ts';
import { ensureStateDir } from '../state/secure.ts';
import { checkFloor, raiseFloor, readFloor } from '../state/floor.ts';
import { withStateLock } from '../state/lock.ts';
import { guardStateWrite, type WindowsHost } from '../state/windows-acl.ts';
import { environmentHasProxy, fetchFeedFile, tlsEnvironmentWarnings, signatureUrl, checkFeedUrl, FeedUnreachableError, type TransportOptions } from './download.ts';
import { parseWinHttpSettings, type WinHttpProxy } from './winhttp.ts';
import { mergeTrustedKeys, type TrustedKey } from './keys.ts';
import { MAX_SIGNATURE_BYTES } from './signature.ts';
import { verifyCatalog, type PreviousCatalog, type VerifiedCatalog } from './verify.ts';

/** Default whole-request deadline for feed downloads. */
export const DEFAULT_TIMEOUT_SECONDS = 30;

/** What `catalog update` needs, validated. */
export interface UpdateRequest {
  stateDir: string;
  /** --url; null: config.json's catalogUrl. */
  url: string | null;
  /** Keys from --trust files (config.json's keys are added). */
  extraKeys: TrustedKey[];
  /** --proxy; null: config.json's proxy, else the environment. */
  proxy: string | null;
  ca: string | null;
  allowInsecure: boolean;
  allowExpired: boolean;
  timeoutMs: number;
  now: Date;
  env?: NodeJS.ProcessEnv | undefined;
  /** Windows: the engine that checks and creates the state folder and reads the WinHTTP proxy (null elsewhere). */
  windows?: WindowsHost | null | undefined;
}

/** The result object `catalog update` prints. */
export interface UpdateResult {
  /** updated: a newer catalog is cached; not-modified: the server said 304; unchanged: same serial, same bytes. */
  outcome: 'updated' | 'not-modified' | 'unchanged';
  url: string;
  serial: number;
  previousSerial: number | null;
  keyId: string;
  cache: string;
  etag: string | null;
  lastModified: string | null;
  /** Warnings for the user (the TLS environment). */
  warnings: string[];
}

/** The previous catalog for the replay check, from the cache entry. */
export function previousFromCache(entry: CacheEntry | null): PreviousCatalog | null {
  return entry === null ? null : { serial: entry.serial, sha256: entry.sha256, label: 'the cached catalog' };
}

/** The previous catalog for `catalog verify`'s replay check: the serial floor or the cache, whichever is higher. */
export function previousFor(stateDir: string, cached: CacheEntry | null): PreviousCatalog | null {
  const fromCache = previousFromCache(cached);
  const floor = readFloor(stateDir);
  if (floor === null || (fromCache !== null && fromCache.serial >= floor.serial)) return fromCache;
  return { serial: floor.serial, sha256: floor.sha256, label: 'the serial floor (floor.json)' };
}

/** Downloads, verifies and caches under the state folder's lock; every rejection throws before the cache is touched. */
export async function updateFromFeed(request: UpdateRequest): Promise<UpdateResult> {
  await guardStateWrite(request.stateDir, request.windows ?? null);
  ensureStateDir(request.stateDir);
  return withStateLock(request.stateDir, () => updateLocked(request));
}

async function updateLocked(request: UpdateRequest): Promise<UpdateResult> {
  const config = readConfig(request.stateDir);
  const urlText = request.url ?? config.catalogUrl;
  if (urlText === null) throw inputError('no feed URL: pass --url URL or set catalogUrl in config.json', `config.json is ${request.stateDir}; see docs/feeds.md.`);
  const keys = mergeTrustedKeys(config.trustedKeys, request.extraKeys);
  const cached = readCache(request.stateDir);
  const warnings = tlsEnvironmentWarnings(request.env ?? process.env);
  const kept = cached === null ? 'Nothing was cached.' : `The cached catalog (serial ${cached.serial}) is kept.`;
  try {
    const proxy = request.proxy ?? config.proxy;
    const transport: TransportOptions = {
      proxy,
      ca: request.ca,
      timeoutMs: request.timeoutMs,
      allowInsecure: request.allowInsecure,
      env: request.env,
      winHttp: await winHttpProxyOf(request.windows ?? null, proxy, request.env ?? process.env),
    };
    const url = checkFeedUrl(urlText, request.allowInsecure);
    const validators = cached !== null && cached.url === url.href ? { etag: cached.etag, lastModified: cached.lastModified } : null;
    const downloaded = await downloadCatalog(url, transport, validators, { keys, now: request.now, allowExpired: request.allowExpired, allowUnsigned: false, previous: previousFromCache(cached) });
    if (downloaded === 'not-modified') {
      const entry = cached as CacheEntry;
      return { outcome: 'not-modified', url: url.href, serial: entry.serial, previousSerial: entry.serial, keyId: entry.key.keyId, cache: cachePath(request.stateDir), etag: entry.etag, lastModified: entry.lastModified, warnings };
    }
    const { verified, signatureText } = downloaded;
    const key = verified.key as TrustedKey;
    if (verified.sameAsPrevious) {
      return { outcome: 'unchanged', url: url.href, serial: verified.catalog.serial, previousSerial: cached?.serial ?? null, keyId: key.keyId, cache: cachePath(request.stateDir), etag: cached?.etag ?? null, lastModified: cached?.lastModified ?? null, warnings };
    }
    // The floor outlives the cache (expired, removed, or its key retired): an older catalog is never cached again.
    checkFloor(readFloor(request.stateDir), verified.catalog.serial, verified.sha256, url.href, 'apply');
    const file = writeCache(request.stateDir, {
      url: url.href,
      etag: downloaded.etag,
      lastModified: downloaded.lastModified,
      fetchedAt: request.now.toISOString(),
      serial: verified.catalog.serial,
      sha256: verified.sha256,
      key: { keyId: key.keyId, publicKey: key.publicKey, name: key.name },
      signature: signatureText as string,
      catalog: downloaded.bytes,
    });
    raiseFloor(request.stateDir, verified.catalog.serial, verified.sha256);
    return { outcome: 'updated', url: url.href, serial: verified.catalog.serial, previousSerial: cached?.serial ?? null, keyId: key.keyId, cache: file, etag: downloaded.etag, lastModified: downloaded.lastModified, warnings };
  } catch (error) {
    if (error instanceof ExmitError) throw withKeptNote(error, kept);
    throw error;
  }
}

/** Where Windows keeps the WinHTTP proxy, as errors name it. */
export const WINHTTP_SETTING = 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections\\WinHttpSettings';

/**
 * On Windows, when neither --proxy, config.json nor HTTPS_PROXY/HTTP_PROXY names a proxy: the
 * machine's WinHTTP proxy (`netsh winhttp show proxy`), read through the engine; null otherwise.
 */
export async function winHttpProxyOf(windows: WindowsHost | null, proxy: string | null, env: NodeJS.ProcessEnv): Promise<WinHttpProxy | null> {
  if (windows === null || proxy !== null || environmentHasProxy(env)) return null;
  const bytes = await windows.winHttpSettings();
  return bytes === null ? null : parseWinHttpSettings(bytes, `the WinHTTP proxy setting ${WINHTTP_SETTING}`);
}

/** The same error with a note on what stays in use appended to its hint. */
function withKeptNote(error: ExmitError, note: string): ExmitError {
  const hint = error.hint === undefined ? note : `${error.hint} ${note}`;
  return error instanceof FeedUnreachableError ? new FeedUnreachableError(error.message, hint) : new ExmitError(error.code, error.message, hint);
}

/** A downloaded and verified catalog. */
export interface DownloadedCatalog {
  bytes: Buffer;
  signatureText: string | null;
  verified: VerifiedCatalog;
  etag: string | null;
  lastModified: string | null;
}

/** Downloads a catalog and its signature (URL + ".sig") and verifies them; not-modified when the server answered 304. */
export async function downloadCatalog(
  url: URL,
  transport: TransportOptions,
  validators: { etag: string | null; lastModified: string | null } | null,
  check: { keys: readonly TrustedKey[]; now: Date; allowExpired: boolean; allowUnsigned: boolean; previous: PreviousCatalog | null; unsignedOption?: boolean },
): Promise<DownloadedCatalog | 'not-modified'> {
  const fetched = await fetchFeedFile(url.href, transport, MAX_CATALOG_BYTES, validators);
  if (fetched.status === 'not-modified') return 'not-modified';
  const sigUrl = signatureUrl(url);
  let signatureText: string | null = null;
  try {
    const sig = await fetchFeedFile(sigUrl.href, transport, MAX_SIGNATURE_BYTES, null);
    if (sig.status === 'ok') signatureText = sig.body.toString('utf8');
  } catch (error) {
    if (!check.allowUnsigned) throw error;
  }
  const verified = verifyCatalog({ bytes: fetched.body, signatureText, what: url.href, sigWhat: sigUrl.href, ...check });
  return { bytes: fetched.body, signatureText, verified, etag: fetched.etag, lastModified: fetched.lastModified };
}
