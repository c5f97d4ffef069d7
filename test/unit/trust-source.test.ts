import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExmitError } from '../../src/errors.ts';
import { resolveCatalog } from '../../src/catalog/source.ts';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import { writeCache, sha256Hex } from '../../src/state/cache.ts';
import { configKey, makeCatalog, makeKey, tempDir, writeConfig } from './trust-fixtures.ts';

const key = makeKey();
const bundled = loadBundledCatalog();
const soon = new Date(`${bundled.published}T12:00:00Z`);

function stateWithCache(serial: number, options: { retired?: boolean } = {}): string {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key, options.retired ?? false)] });
  const catalog = makeCatalog({ serial });
  writeCache(dir, { url: 'https://feed/c.xml', etag: null, lastModified: null, fetchedAt: soon.toISOString(), serial, sha256: sha256Hex(catalog), key: { keyId: key.trusted.keyId, publicKey: key.trusted.publicKey, name: null }, signature: key.sign(catalog), catalog });
  return dir;
}

test('the cache is used when its serial is above the bundled one, else the bundled catalog', async () => {
  const newer = await resolveCatalog({ catalog: undefined, stateDir: stateWithCache(bundled.serial + 1), purpose: 'read', now: soon });
  assert.equal(newer.source, 'cache');
  assert.equal(newer.catalog.serial, bundled.serial + 1);
  const older = await resolveCatalog({ catalog: undefined, stateDir: stateWithCache(bundled.serial - 1), purpose: 'read', now: soon });
  assert.equal(older.source, 'bundled');
  assert.deepEqual(older.warnings, []);
});

test('a cached catalog whose key is now retired is not used, with a warning', async () => {
  const resolved = await resolveCatalog({ catalog: undefined, stateDir: stateWithCache(bundled.serial + 1, { retired: true }), purpose: 'read', now: soon });
  assert.equal(resolved.source, 'bundled');
  assert.match(resolved.warnings.join('\n'), /retired/);
});

test('a bundled catalog more than 90 days old warns, unless a newer catalog is cached', async () => {
  const late = new Date(Date.parse(`${bundled.published}T00:00:00Z`) + 91 * 86_400_000);
  const alone = await resolveCatalog({ catalog: undefined, stateDir: tempDir(), purpose: 'read', now: late });
  assert.equal(alone.warnings.length, 1);
  assert.match(alone.warnings[0] ?? '', /more than 90 days old/);
  const withCache = await resolveCatalog({ catalog: undefined, stateDir: stateWithCache(bundled.serial + 1), purpose: 'read', now: late });
  assert.deepEqual(withCache.warnings, []);
});

test('--catalog URL: a feed that is down is an error naming the URL (exit 1), not a switch to another catalog; the hint names the one used without --catalog', async () => {
  await assert.rejects(resolveCatalog({ catalog: 'https://127.0.0.1:1/catalog.xml', stateDir: stateWithCache(bundled.serial + 5), purpose: 'read', now: soon, env: {} }), (error: unknown) => {
    assert.ok(error instanceof ExmitError);
    assert.equal(error.code, 1);
    assert.match(error.message, /^--catalog https:\/\/127\.0\.0\.1:1\/catalog\.xml: cannot be reached/);
    assert.match(error.hint ?? '', new RegExp(`leave out --catalog to use the newest verified catalog \\(the cached one, serial ${bundled.serial + 5}\\)`));
    return true;
  });
});

test('--catalog FILE: signature needed; --allow-unsigned read-only; apply refuses it (exit 2) and an older catalog', async () => {
  const dir = stateWithCache(bundled.serial + 5);
  const folder = tempDir();
  const file = path.join(folder, 'c.xml');
  const newer = makeCatalog({ serial: bundled.serial + 6 });
  writeFileSync(file, newer);
  await assert.rejects(resolveCatalog({ catalog: file, stateDir: dir, purpose: 'read', now: soon }), /no signature/);
  const unsigned = await resolveCatalog({ catalog: file, stateDir: dir, purpose: 'read', allowUnsigned: true, now: soon });
  assert.equal(unsigned.source, 'file');
  assert.match(unsigned.warnings.join(), /unsigned/);
  await assert.rejects(resolveCatalog({ catalog: file, stateDir: dir, purpose: 'apply', allowUnsigned: true, now: soon }), (e: unknown) => e instanceof ExmitError && e.code === 2);
  writeFileSync(`${file}.sig`, key.sign(newer));
  assert.equal((await resolveCatalog({ catalog: file, stateDir: dir, purpose: 'apply', now: soon })).catalog.serial, bundled.serial + 6);
  const old = makeCatalog({ serial: bundled.serial + 1 });
  writeFileSync(file, old);
  writeFileSync(`${file}.sig`, key.sign(old));
  const readOnly = await resolveCatalog({ catalog: file, stateDir: dir, purpose: 'read', now: soon });
  assert.equal(readOnly.catalog.serial, bundled.serial + 1);
  assert.match(readOnly.warnings.join(), /older than the cached catalog's.*read-only/);
  await assert.rejects(resolveCatalog({ catalog: file, stateDir: dir, purpose: 'apply', now: soon }), /refused as a replay/);
});

test('an insecure state folder stops every catalog read (exit 1)', async () => {
  const dir = stateWithCache(bundled.serial + 1);
  chmodSync(dir, 0o777);
  await assert.rejects(resolveCatalog({ catalog: undefined, stateDir: dir, purpose: 'read', now: soon }), (e: unknown) => e instanceof ExmitError && e.code === 1 && /writable by group or others/.test(e.message));
});
