/** Detached catalog signatures: the `.sig` file format (docs/feeds.md), signing and checking bytes. */
import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { inputError } from '../errors.ts';
import { decodeBase64Exact, keyIdOf, publicKeyObject, rawPublicKey, type TrustedKey } from './keys.ts';

/** The `format` value of a signature file. */
export const SIGNATURE_FORMAT = 'exmit-signature/1';

/** Prefixed to the catalog bytes before signing, so an exmit key's signature means nothing elsewhere. */
export const SIGNED_PREFIX = Buffer.from('exmit-catalog-signature/1\n', 'utf8');

/** Signature files are tiny; anything bigger is not one. */
export const MAX_SIGNATURE_BYTES = 4096;

/** A parsed signature file. */
export interface DetachedSignature {
  keyId: string;
  /** 64 bytes. */
  signature: Buffer;
}

/** Signs catalog bytes and returns the signature file's text. */
export function signCatalogBytes(bytes: Buffer, privateKey: KeyObject, publicKey: KeyObject): string {
  const keyId = keyIdOf(rawPublicKey(publicKey));
  const signature = cryptoSign(null, Buffer.concat([SIGNED_PREFIX, bytes]), privateKey);
  return JSON.stringify({ format: SIGNATURE_FORMAT, algorithm: 'ed25519', keyId, signature: signature.toString('base64') }, null, 2) + '\n';
}

/** Parses a signature file's text strictly; `file` names it in errors. */
export function parseSignatureFile(text: string, file: string): DetachedSignature {
  const hint = 'Sign the catalog again with "exmit catalog sign FILE --key KEY", or ask the feed\'s publisher.';
  if (Buffer.byteLength(text, 'utf8') > MAX_SIGNATURE_BYTES) throw inputError(`${file}: too large to be a signature file`, hint);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw inputError(`${file}: not a signature file (not JSON)`, hint);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw inputError(`${file}: not a signature file`, hint);
  const record = value as Record<string, unknown>;
  for (const field of Object.keys(record)) {
    if (!['format', 'algorithm', 'keyId', 'signature'].includes(field)) throw inputError(`${file}: unknown field "${field}" in the signature file`, hint);
  }
  if (record['format'] !== SIGNATURE_FORMAT) throw inputError(`${file}: format is not "${SIGNATURE_FORMAT}"`, hint);
  if (record['algorithm'] !== 'ed25519') throw inputError(`${file}: algorithm is not "ed25519"`, hint);
  const keyId = record['keyId'];
  if (typeof keyId !== 'string' || !/^[0-9a-f]{16}$/.test(keyId)) throw inputError(`${file}: keyId is not 16 hex digits`, hint);
  const signature = typeof record['signature'] === 'string' ? decodeBase64Exact(record['signature'], 64) : null;
  if (signature === null) throw inputError(`${file}: signature is not 64 bytes of base64`, hint);
  return { keyId, signature };
}

/**
 * Checks a signature over catalog bytes against the trusted keys and returns the key that signed.
 * `what` names the catalog and `sigFile` the signature in errors.
 */
export function verifyCatalogSignature(bytes: Buffer, signatureText: string, keys: readonly TrustedKey[], what: string, sigFile: string): TrustedKey {
  const parsed = parseSignatureFile(signatureText, sigFile);
  const key = keys.find((k) => k.keyId === parsed.keyId);
  if (key === undefined) {
    throw inputError(`${what}: signed by key ${parsed.keyId}, which is not a trusted key`, keys.length === 0 ? 'No key is trusted: add the publisher\'s key to trustedKeys in config.json, or pass --trust PUBFILE.' : `Trusted keys: ${keys.map((k) => k.keyId).join(', ')}. Add the publisher's key to trustedKeys in config.json, or pass --trust PUBFILE.`);
  }
  if (key.retired) throw inputError(`${what}: signed by key ${key.keyId}, which is retired (${key.origin})`, 'Ask the feed\'s publisher to sign with their current key.');
  const ok = cryptoVerify(null, Buffer.concat([SIGNED_PREFIX, bytes]), publicKeyObject(key), parsed.signature);
  if (!ok) throw inputError(`${what}: the signature does not match (the catalog or ${sigFile} was changed after signing)`, 'Do not use this catalog; fetch it again from its publisher.');
  return key;
}
