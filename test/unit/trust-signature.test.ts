import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExmitError } from '../../src/errors.ts';
import { keyIdOf, mergeTrustedKeys, parsePublicKeyFile, parseTrustedKey, decodeBase64Exact } from '../../src/trust/keys.ts';
import { parseSignatureFile, verifyCatalogSignature } from '../../src/trust/signature.ts';
import { verifyCatalog } from '../../src/trust/verify.ts';
import { makeCatalog, makeKey } from './trust-fixtures.ts';

const now = new Date('2026-07-15T12:00:00Z');

function verifyWith(bytes: Buffer, sig: string, keys = [key.trusted]) {
  return verifyCatalog({ bytes, signatureText: sig, what: 'catalog.xml', sigWhat: 'catalog.xml.sig', keys, now, allowExpired: false, allowUnsigned: false, previous: null });
}

const key = makeKey('publisher');

test('a signed catalog verifies and names the key that signed it', () => {
  const bytes = makeCatalog();
  const result = verifyWith(bytes, key.sign(bytes));
  assert.equal(result.key?.keyId, key.trusted.keyId);
  assert.equal(result.catalog.serial, 2026070101);
});

test('every byte of a small signed catalog flipped in turn fails verification', () => {
  const bytes = makeCatalog();
  const sig = key.sign(bytes);
  assert.ok(bytes.length > 400);
  for (let i = 0; i < bytes.length; i++) {
    const tampered = Buffer.from(bytes);
    tampered[i] = (tampered[i] as number) ^ 0x01;
    assert.throws(() => verifyWith(tampered, sig), (e: unknown) => e instanceof ExmitError && /signature does not match/.test(e.message), `byte ${i}`);
  }
  // and truncation or an appended byte
  assert.throws(() => verifyWith(bytes.subarray(0, bytes.length - 1), sig), /signature does not match/);
  assert.throws(() => verifyWith(Buffer.concat([bytes, Buffer.from(' ')]), sig), /signature does not match/);
});

test('a tampered signature fails: any flipped signature byte, a bad format, a swapped key id', () => {
  const bytes = makeCatalog();
  const sigText = key.sign(bytes);
  const parsed = JSON.parse(sigText) as { signature: string; keyId: string };
  const raw = Buffer.from(parsed.signature, 'base64');
  for (let i = 0; i < raw.length; i++) {
    const flipped = Buffer.from(raw);
    flipped[i] = (flipped[i] as number) ^ 0x80;
    const text = JSON.stringify({ ...parsed, signature: flipped.toString('base64') });
    assert.throws(() => verifyWith(bytes, text), /signature does not match/, `signature byte ${i}`);
  }
  assert.throws(() => verifyWith(bytes, 'not json'), /not a signature file/);
  assert.throws(() => verifyWith(bytes, JSON.stringify({ ...parsed, format: 'other/1' })), /format is not/);
  assert.throws(() => verifyWith(bytes, JSON.stringify({ ...parsed, signature: raw.subarray(1).toString('base64') })), /64 bytes/);
  assert.throws(() => verifyWith(bytes, JSON.stringify({ ...parsed, extra: 1 })), /unknown field "extra"/);
  assert.throws(() => verifyWith(bytes, null as unknown as string), /no signature/);
});

test('a catalog signed by an unknown key is refused, even when a trusted key exists', () => {
  const other = makeKey('attacker');
  const bytes = makeCatalog();
  assert.throws(() => verifyWith(bytes, other.sign(bytes)), (e: unknown) => e instanceof ExmitError && e.message.includes(other.trusted.keyId) && /not a trusted key/.test(e.message));
  assert.throws(() => verifyWith(bytes, other.sign(bytes), []), /not a trusted key/);
  // a signature whose key id names the trusted key but was made by another key
  const forged = JSON.parse(other.sign(bytes)) as Record<string, string>;
  forged['keyId'] = key.trusted.keyId;
  assert.throws(() => verifyWith(bytes, JSON.stringify(forged)), /signature does not match/);
});

test('a retired key signs nothing, and --trust cannot revive it', () => {
  const bytes = makeCatalog();
  const retired = { ...key.trusted, retired: true, origin: 'config.json trustedKeys[0]' };
  assert.throws(() => verifyWith(bytes, key.sign(bytes), [retired]), /retired/);
  const merged = mergeTrustedKeys([retired], [key.trusted]);
  assert.equal(merged.length, 1);
  assert.equal(merged[0]?.retired, true);
  assert.equal(mergeTrustedKeys([key.trusted], [retired])[0]?.retired, true);
});

test('key records: the key id must belong to the key; strict base64; unknown fields refused', () => {
  const record = { keyId: key.trusted.keyId, publicKey: key.trusted.publicKey };
  assert.equal(parseTrustedKey(record, 'x', false).keyId, key.trusted.keyId);
  assert.equal(keyIdOf(decodeBase64Exact(key.trusted.publicKey, 32) as Buffer), key.trusted.keyId);
  assert.throws(() => parseTrustedKey({ ...record, keyId: '0000000000000000' }, 'config.json trustedKeys[0]', false), /config\.json trustedKeys\[0\]: keyId "0000000000000000" does not belong/);
  assert.throws(() => parseTrustedKey({ ...record, publicKey: 'abc' }, 'k', false), /32 bytes/);
  assert.throws(() => parseTrustedKey({ ...record, trusted: true }, 'k', false), /unknown field "trusted"/);
  assert.throws(() => parseTrustedKey({ ...record, retired: 'yes' }, 'k', false), /retired must be/);
  assert.throws(() => parsePublicKeyFile(JSON.stringify(record), 'a.pub'), /format is not/);
  assert.equal(decodeBase64Exact('QUJD', 3)?.toString(), 'ABC');
  assert.equal(decodeBase64Exact('QUJD\n', 3), null);
});

test('signature files: keyId must be 16 hex digits', () => {
  const sig = JSON.parse(key.sign(makeCatalog())) as Record<string, string>;
  assert.equal(parseSignatureFile(JSON.stringify(sig), 's').keyId, key.trusted.keyId);
  assert.throws(() => parseSignatureFile(JSON.stringify({ ...sig, keyId: 'ABC' }), 's'), /16 hex/);
  assert.throws(() => verifyCatalogSignature(Buffer.from('x'), JSON.stringify({ ...sig, algorithm: 'rsa' }), [key.trusted], 'c', 's'), /algorithm/);
});
