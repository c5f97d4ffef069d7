/** Catalog verification: signature, schema and action vocabulary (the parser), exmit version, expiry and serial. */
import semver from 'semver';
import { inputError } from '../errors.ts';
import { parseCatalog } from '../catalog/parse.ts';
import type { Catalog } from '../catalog/types.ts';
import { VERSION } from '../version.ts';
import { sha256Hex } from '../state/cache.ts';
import type { TrustedKey } from './keys.ts';
import { verifyCatalogSignature } from './signature.ts';

/** The catalog a new one is compared with, so that an older one cannot be replayed. */
export interface PreviousCatalog {
  serial: number;
  sha256: string;
  /** "the cached catalog", for messages. */
  label: string;
}

/** What to verify and against what. */
export interface VerifyRequest {
  bytes: Buffer;
  /** The signature file's text; null when there is none (refused unless allowUnsigned). */
  signatureText: string | null;
  /** Names the catalog in messages (a path or URL). */
  what: string;
  /** Names the signature in messages. */
  sigWhat: string;
  keys: readonly TrustedKey[];
  now: Date;
  allowExpired: boolean;
  /** Skip the signature (authoring and dry runs only; callers refuse it for apply). */
  allowUnsigned: boolean;
  /** null: no replay check. */
  previous: PreviousCatalog | null;
  /** The command takes --allow-unsigned (audit, catalog list/show): only then does the hint name it. */
  unsignedOption?: boolean;
  /** The exmit version checked against `requires` (default: this one). */
  version?: string;
}

/** A verified catalog. */
export interface VerifiedCatalog {
  catalog: Catalog;
  sha256: string;
  /** The key that signed it; null when allowUnsigned skipped the signature. */
  key: TrustedKey | null;
  /** Same serial and same bytes as `previous`. */
  sameAsPrevious: boolean;
}

/** Verifies catalog bytes in order: signature first (so the parser sees only signed bytes), then schema, requires, expiry, serial. */
export function verifyCatalog(request: VerifyRequest): VerifiedCatalog {
  let key: TrustedKey | null = null;
  if (!request.allowUnsigned) {
    if (request.signatureText === null) throw inputError(`${request.what}: no signature (${request.sigWhat} is missing)`, `Sign it with "exmit catalog sign FILE --key KEY"${request.unsignedOption === true ? '; --allow-unsigned reads it unsigned, for authoring and dry runs only' : ''}.`);
    key = verifyCatalogSignature(request.bytes, request.signatureText, request.keys, request.what, request.sigWhat);
  }
  const catalog = parseCatalog(decodeUtf8(request.bytes, request.what), request.what, { now: request.now });
  checkRequires(catalog, request.what, request.version ?? VERSION);
  checkExpiry(catalog, request.what, request.now, request.allowExpired);
  const sha256 = sha256Hex(request.bytes);
  const sameAsPrevious = request.previous === null ? false : checkSerial(catalog, sha256, request.previous, request.what);
  return { catalog, sha256, key, sameAsPrevious };
}

/** What `catalog sign` checks before signing, so that it never signs what no server would accept: UTF-8, schema, vocabulary and `requires` (`what` names the file). */
export function checkBeforeSigning(bytes: Buffer, what: string, version: string = VERSION): Catalog {
  const catalog = parseCatalog(decodeUtf8(bytes, what), what);
  checkRequires(catalog, what, version);
  return catalog;
}

/** Decodes UTF-8 strictly (a BOM is dropped); `what` names the catalog. */
export function decodeUtf8(bytes: Buffer, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw inputError(`${what}: not UTF-8 text`, 'A catalog is an XML file in UTF-8.');
  }
}

/** Refuses a catalog whose `requires` range this exmit version does not satisfy. */
export function checkRequires(catalog: Catalog, what: string, version: string): void {
  if (!semver.satisfies(version, catalog.requires, { includePrerelease: true })) {
    throw inputError(`${what}: requires exmit ${catalog.requires}, and this is exmit ${version}`, 'Update exmit, then run again.');
  }
}

/** True when the catalog's `expires` day (UTC) is over. */
export function isExpired(catalog: Catalog, now: Date): boolean {
  const end = Date.parse(`${catalog.expires}T00:00:00Z`) + 24 * 60 * 60 * 1000;
  return now.getTime() >= end;
}

/** Refuses an expired catalog unless allowed. */
export function checkExpiry(catalog: Catalog, what: string, now: Date, allowExpired: boolean): void {
  if (isExpired(catalog, now) && !allowExpired) {
    throw inputError(`${what}: expired on ${catalog.expires} (serial ${catalog.serial})`, 'Ask the feed\'s publisher for a current catalog; --allow-expired accepts it anyway.');
  }
}

/**
 * Refuses a replay: the serial must be higher than the previous catalog's, or equal with the same
 * bytes (then returns true). Whichever trusted key signed it.
 */
export function checkSerial(catalog: Catalog, sha256: string, previous: PreviousCatalog, what: string): boolean {
  if (catalog.serial < previous.serial) {
    throw inputError(`${what}: serial ${catalog.serial} is older than ${previous.label}'s (${previous.serial}): refused as a replay`, 'A newer catalog needs a higher serial (YYYYMMDDNN).');
  }
  if (catalog.serial === previous.serial) {
    if (sha256 !== previous.sha256) throw inputError(`${what}: serial ${catalog.serial} is the same as ${previous.label}'s but the content differs: refused`, 'A changed catalog needs a higher serial (YYYYMMDDNN).');
    return true;
  }
  return false;
}
