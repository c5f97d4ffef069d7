/** Ed25519 signing keys: key ids, the public key file format, and the set of keys a run trusts. */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { inputError } from '../errors.ts';

/** The `format` value of a public key file (docs/feeds.md). */
export const PUBLIC_KEY_FORMAT = 'exmit-public-key/1';

/** A public key that may sign catalogs, from config.json's `trustedKeys`, a `--trust` file or the cache. */
export interface TrustedKey {
  /** Derived from the key itself: 16 hex digits of SHA-256 over the raw 32-byte public key. */
  keyId: string;
  /** The raw 32-byte Ed25519 public key, base64. */
  publicKey: string;
  /** A name for people ("contoso feed 2026"); null when none was given. */
  name: string | null;
  /** A retired key signs nothing any more: catalogs signed by it are refused. */
  retired: boolean;
  /** Where the key came from, for messages (a file path or "config.json trustedKeys[0]"). */
  origin: string;
}

/** A freshly made key pair, as keygen writes it. */
export interface GeneratedKeyPair {
  keyId: string;
  publicKey: string;
  /** PKCS#8 PEM of the private key. */
  privatePem: string;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Decodes strict base64 of an exact length; null when it is not that. */
export function decodeBase64Exact(text: string, length: number): Buffer | null {
  if (!BASE64.test(text)) return null;
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length !== length || bytes.toString('base64') !== text) return null;
  return bytes;
}

/** The key id of a raw public key: 16 hex digits of its SHA-256, so an id cannot name another key. */
export function keyIdOf(rawPublicKey: Buffer): string {
  return createHash('sha256').update(rawPublicKey).digest('hex').slice(0, 16);
}

/** Makes an Ed25519 key pair. */
export function generateKeyPair(): GeneratedKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(publicKey);
  return { keyId: keyIdOf(raw), publicKey: raw.toString('base64'), privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString() };
}

/** The raw 32 bytes of an Ed25519 public key object. */
export function rawPublicKey(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw inputError('not an Ed25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

/** A Node key object for a trusted key's raw public key. */
export function publicKeyObject(key: TrustedKey): KeyObject {
  const raw = decodeBase64Exact(key.publicKey, 32);
  if (raw === null) throw inputError(`${key.origin}: publicKey is not 32 bytes of base64`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

/** Reads a PKCS#8 PEM private key; `file` names it in errors. */
export function parsePrivateKey(pem: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch {
    throw inputError(`${file}: not a PEM private key`, 'Use the .key file that "exmit catalog keygen" wrote.');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw inputError(`${file}: not an Ed25519 key (${key.asymmetricKeyType ?? 'unknown type'})`, 'Make one with "exmit catalog keygen --out DIR".');
  return key;
}

/** The text of a public key file (.pub). */
export function formatPublicKeyFile(keyId: string, publicKey: string, name: string): string {
  return JSON.stringify({ format: PUBLIC_KEY_FORMAT, algorithm: 'ed25519', keyId, publicKey, name }, null, 2) + '\n';
}

/** Validates one key record (a .pub file's content or a config.json trustedKeys entry); `origin` names it in errors. */
export function parseTrustedKey(value: unknown, origin: string, requireFormat: boolean): TrustedKey {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw inputError(`${origin}: a key must be a JSON object with keyId and publicKey`, 'See docs/feeds.md, "Trusted keys".');
  const record = value as Record<string, unknown>;
  const allowed = new Set(['format', 'algorithm', 'keyId', 'publicKey', 'name', 'retired', 'comment']);
  for (const field of Object.keys(record)) {
    if (!allowed.has(field)) throw inputError(`${origin}: unknown field "${field}"`, 'A key has keyId, publicKey, and optionally name, retired, comment.');
  }
  if (requireFormat && record['format'] !== PUBLIC_KEY_FORMAT) throw inputError(`${origin}: format is not "${PUBLIC_KEY_FORMAT}"`, 'Use the .pub file that "exmit catalog keygen" wrote.');
  if (record['algorithm'] !== undefined && record['algorithm'] !== 'ed25519') throw inputError(`${origin}: algorithm "${String(record['algorithm'])}" is not supported`, 'exmit keys are Ed25519 ("ed25519").');
  const publicKey = record['publicKey'];
  if (typeof publicKey !== 'string') throw inputError(`${origin}: publicKey is missing`, 'Copy it from the feed publisher\'s .pub file.');
  const raw = decodeBase64Exact(publicKey, 32);
  if (raw === null) throw inputError(`${origin}: publicKey is not 32 bytes of base64`, 'Copy it from the feed publisher\'s .pub file.');
  const keyId = record['keyId'];
  if (typeof keyId !== 'string') throw inputError(`${origin}: keyId is missing`, 'Copy it from the feed publisher\'s .pub file.');
  if (keyId !== keyIdOf(raw)) throw inputError(`${origin}: keyId "${keyId}" does not belong to this publicKey (it is ${keyIdOf(raw)})`, 'Copy keyId and publicKey together from the same .pub file.');
  const name = record['name'];
  if (name !== undefined && name !== null && typeof name !== 'string') throw inputError(`${origin}: name must be a string`);
  const retired = record['retired'];
  if (retired !== undefined && typeof retired !== 'boolean') throw inputError(`${origin}: retired must be true or false`);
  return { keyId, publicKey, name: typeof name === 'string' ? name : null, retired: retired === true, origin };
}

/** Parses a public key file's text; `file` names it in errors. */
export function parsePublicKeyFile(text: string, file: string): TrustedKey {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw inputError(`${file}: not a public key file (not JSON)`, 'Use the .pub file that "exmit catalog keygen" wrote.');
  }
  return parseTrustedKey(value, file, true);
}

/** Merges key lists; a key retired anywhere stays retired, so --trust cannot revive a retired key. */
export function mergeTrustedKeys(...lists: TrustedKey[][]): TrustedKey[] {
  const byId = new Map<string, TrustedKey>();
  for (const list of lists) {
    for (const key of list) {
      const seen = byId.get(key.keyId);
      if (seen === undefined) byId.set(key.keyId, key);
      else if (key.retired && !seen.retired) byId.set(key.keyId, { ...seen, retired: true, origin: key.origin });
    }
  }
  return [...byId.values()];
}
