/** The cached catalog: its bytes, its signature, the key that verified it and the feed's ETag/Last-Modified, in one file replaced atomically. */
import { createHash } from 'node:crypto';
import { inputError } from '../errors.ts';
import { decodeBase64Exact } from '../trust/keys.ts';
import { MAX_CATALOG_BYTES } from '../catalog/parse.ts';
import { cachePath } from './paths.ts';
import { ensureStateDir, readStateFile, writeFileAtomic, currentRunner, type Runner } from './secure.ts';

/** The `format` value of the cache file. */
export const CACHE_FORMAT = 'exmit-catalog-cache/1';

/** One cached, verified catalog. */
export interface CacheEntry {
  /** The feed it came from. */
  url: string;
  etag: string | null;
  lastModified: string | null;
  /** When it was downloaded (ISO 8601). */
  fetchedAt: string;
  serial: number;
  /** SHA-256 of the catalog bytes, hex. */
  sha256: string;
  /** The key that verified it (re-checked on every read unless config.json retires it). */
  key: { keyId: string; publicKey: string; name: string | null };
  /** The signature file's text, as downloaded. */
  signature: string;
  /** The catalog bytes, exactly as signed. */
  catalog: Buffer;
}

/** SHA-256 hex of bytes. */
export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads the cache after checking the folder's and file's owner and access; null when nothing is cached. A damaged cache is an error naming the file. */
export function readCache(stateDir: string, runner: Runner = currentRunner()): CacheEntry | null {
  const file = cachePath(stateDir);
  const bytes = readStateFile(stateDir, file, MAX_CATALOG_BYTES * 2 + 65536 /* base64 of the largest catalog, plus metadata */, runner);
  if (bytes === null) return null;
  const damaged = (what: string) => inputError(`${file}: damaged cache (${what})`, `Remove ${file} and run "exmit catalog update".`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw damaged('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw damaged('not an object');
  const r = value as Record<string, unknown>;
  if (r['format'] !== CACHE_FORMAT) throw damaged(`format is not ${CACHE_FORMAT}`);
  const str = (field: string): string => {
    const v = r[field];
    if (typeof v !== 'string') throw damaged(`${field} missing`);
    return v;
  };
  const strOrNull = (field: string): string | null => {
    const v = r[field];
    if (v === null) return null;
    if (typeof v !== 'string') throw damaged(`${field} missing`);
    return v;
  };
  const serial = r['serial'];
  if (typeof serial !== 'number' || !Number.isSafeInteger(serial)) throw damaged('serial missing');
  const key = r['key'];
  if (typeof key !== 'object' || key === null) throw damaged('key missing');
  const k = key as Record<string, unknown>;
  if (typeof k['keyId'] !== 'string' || typeof k['publicKey'] !== 'string' || (k['name'] !== null && typeof k['name'] !== 'string')) throw damaged('key missing');
  const catalogText = str('catalog');
  const catalog = Buffer.from(catalogText, 'base64');
  if (catalog.toString('base64') !== catalogText) throw damaged('catalog is not base64');
  const sha256 = str('sha256');
  if (sha256Hex(catalog) !== sha256) throw damaged('catalog does not match its sha256');
  if (decodeBase64Exact(k['publicKey'], 32) === null) throw damaged('key.publicKey');
  return {
    url: str('url'),
    etag: strOrNull('etag'),
    lastModified: strOrNull('lastModified'),
    fetchedAt: str('fetchedAt'),
    serial,
    sha256,
    key: { keyId: k['keyId'], publicKey: k['publicKey'], name: (k['name'] as string | null) },
    signature: str('signature'),
    catalog,
  };
}

/** Writes the cache atomically, creating the state folder owner-only when missing. */
export function writeCache(stateDir: string, entry: CacheEntry, runner: Runner = currentRunner()): string {
  ensureStateDir(stateDir, runner);
  const file = cachePath(stateDir);
  const document = {
    format: CACHE_FORMAT,
    url: entry.url,
    etag: entry.etag,
    lastModified: entry.lastModified,
    fetchedAt: entry.fetchedAt,
    serial: entry.serial,
    sha256: entry.sha256,
    key: entry.key,
    signature: entry.signature,
    catalog: entry.catalog.toString('base64'),
  };
  writeFileAtomic(file, JSON.stringify(document, null, 2) + '\n');
  return file;
}
