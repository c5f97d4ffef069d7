// Replay over time: the serial floor outlives the cache, and the cache is trusted only under keys trusted now.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExmitError } from '../../src/errors.ts';
import { resolveCatalog } from '../../src/catalog/source.ts';
import { loadBundledCatalog, parseCatalog } from '../../src/catalog/parse.ts';
import { writeCache, sha256Hex } from '../../src/state/cache.ts';
import { checkFloor, floorPath, readFloor } from '../../src/state/floor.ts';
import { previousFor, updateFromFeed } from '../../src/trust/update.ts';
import { checkSerial } from '../../src/trust/verify.ts';
import { configKey, makeCatalog, makeCertificate, makeKey, startFeed, tempDir, writeConfig, type Feed } from './trust-fixtures.ts';

const key = makeKey('feed');
const bundled = loadBundledCatalog();
const soon = new Date(`${bundled.published}T12:00:00Z`);
const tls = makeCertificate(tempDir());
let feed: Feed;

before(async () => {
  feed = await startFeed(tls);
});
after(async () => {
  await feed.close();
});

/** A signed catalog file in its own folder. */
function signedFile(serial: number, options: { expires?: string; title?: string } = {}): string {
  const file = path.join(tempDir(), 'c.xml');
  const bytes = makeCatalog({ serial, ...options });
  writeFileSync(file, bytes);
  writeFileSync(`${file}.sig`, key.sign(bytes));
  return file;
}

function cacheWith(dir: string, serial: number, expires = '2099-12-31'): void {
  const catalog = makeCatalog({ serial, expires });
  writeCache(dir, { url: 'https://feed/c.xml', etag: null, lastModified: null, fetchedAt: soon.toISOString(), serial, sha256: sha256Hex(catalog), key: { keyId: key.trusted.keyId, publicKey: key.trusted.publicKey, name: null }, signature: key.sign(catalog), catalog });
}

test('an accepted --catalog raises the floor, written atomically and owner-only as {serial, sha256}', async () => {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key)] });
  const file = signedFile(bundled.serial + 3);
  const resolved = await resolveCatalog({ catalog: file, stateDir: dir, purpose: 'read', now: soon });
  assert.deepEqual(resolved.warnings, []);
  assert.deepEqual(JSON.parse(readFileSync(floorPath(dir), 'utf8')), { serial: bundled.serial + 3, sha256: sha256Hex(readFileSync(file)) });
  assert.equal(statSync(floorPath(dir)).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'floor.json']);
  // an older one does not lower it
  await resolveCatalog({ catalog: signedFile(bundled.serial + 1), stateDir: dir, purpose: 'read', now: soon });
  assert.equal(readFloor(dir)?.serial, bundled.serial + 3);
});

test('once the cached catalog has expired, an older signed --catalog is still older than the floor: read-only, never applied', async () => {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key)] });
  const newest = signedFile(bundled.serial + 6, { expires: '2026-12-15' });
  await resolveCatalog({ catalog: newest, stateDir: dir, purpose: 'read', now: soon });
  cacheWith(dir, bundled.serial + 6, '2026-12-15');
  const later = new Date('2027-01-10T00:00:00Z');
  const old = signedFile(bundled.serial + 2);
  const read = await resolveCatalog({ catalog: old, stateDir: dir, purpose: 'read', now: later });
  assert.equal(read.catalog.serial, bundled.serial + 2);
  assert.match(read.warnings.join('\n'), new RegExp(`serial ${bundled.serial + 2} is older than the highest serial accepted before \\(${bundled.serial + 6}, .*floor\\.json\\).*used read-only \\(apply refuses it\\)`));
  await assert.rejects(resolveCatalog({ catalog: old, stateDir: dir, purpose: 'apply', now: later }), (e: unknown) => e instanceof ExmitError && e.code === 1 && /older than the highest serial accepted before.*refused as a replay/.test(e.message));
  // the same serial with other bytes is no better
  const twin = signedFile(bundled.serial + 6, { title: 'Other' });
  await assert.rejects(resolveCatalog({ catalog: twin, stateDir: dir, purpose: 'apply', now: later }), /same serial as the highest accepted before but other content/);
  // the same bytes pass
  assert.equal((await resolveCatalog({ catalog: newest, stateDir: dir, purpose: 'apply', now: soon })).catalog.serial, bundled.serial + 6);
});

test('checkFloor: newer passes, the same bytes pass, older and same-serial-other-bytes are read-only or refused', () => {
  const floor = { serial: 2026112805, sha256: 'aa', file: '/s/floor.json' };
  assert.equal(checkFloor(floor, 2026112806, 'bb', 'c.xml', 'apply'), 'newer');
  assert.equal(checkFloor(floor, 2026112805, 'aa', 'c.xml', 'apply'), 'same');
  assert.equal(checkFloor(null, 1, 'bb', 'c.xml', 'apply'), 'newer');
  assert.equal(checkFloor(floor, 2026112804, 'bb', 'c.xml', 'read'), 'read-only');
  assert.equal(checkFloor(floor, 2026112805, 'bb', 'c.xml', 'read'), 'read-only');
  assert.throws(() => checkFloor(floor, 2026112804, 'bb', 'c.xml', 'apply'), /c\.xml: serial 2026112804 is older than the highest serial accepted before \(2026112805, recorded in \/s\/floor\.json\): refused as a replay/);
});

test('catalog update raises the floor and refuses an older catalog even after the cache is gone', async () => {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key)], catalogUrl: `${feed.url}/f.xml` });
  const publish = (serial: number) => {
    const bytes = makeCatalog({ serial });
    feed.routes.set('/f.xml', { body: bytes });
    feed.routes.set('/f.xml.sig', { body: key.sign(bytes) });
    return bytes;
  };
  const request = { stateDir: dir, url: null, extraKeys: [], proxy: null, ca: tls.cert, allowInsecure: false, allowExpired: false, timeoutMs: 5000, now: new Date('2026-07-15T00:00:00Z'), env: {} };
  const bytes = publish(2026070105);
  assert.equal((await updateFromFeed(request)).outcome, 'updated');
  assert.deepEqual(readFloor(dir), { serial: 2026070105, sha256: sha256Hex(bytes), file: floorPath(dir) });
  unlinkSync(path.join(dir, 'catalog-cache.json'));
  publish(2026070104);
  await assert.rejects(updateFromFeed(request), (e: unknown) => e instanceof ExmitError && /serial 2026070104 is older than the highest serial accepted before \(2026070105/.test(e.message));
  assert.deepEqual(readdirSync(dir).sort(), ['config.json', 'floor.json']);
});

test('a damaged floor names the file', () => {
  const dir = tempDir();
  writeFileSync(floorPath(dir), '{"serial":"x"}', { mode: 0o600 });
  assert.throws(() => readFloor(dir), (e: unknown) => e instanceof ExmitError && e.message.includes(floorPath(dir)) && /damaged/.test(e.message));
});

test('the cache is used only under keys trusted now: config.json or this run\'s --trust, not the key the cache recorded', async () => {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [] });
  cacheWith(dir, bundled.serial + 1);
  const untrusted = await resolveCatalog({ catalog: undefined, stateDir: dir, purpose: 'read', now: soon });
  assert.equal(untrusted.source, 'bundled');
  assert.match(untrusted.warnings.join('\n'), /not a trusted key.*not used/);
  const pub = path.join(tempDir(), 'k.pub');
  writeFileSync(pub, JSON.stringify({ format: 'exmit-public-key/1', algorithm: 'ed25519', keyId: key.trusted.keyId, publicKey: key.trusted.publicKey, name: 'feed' }));
  const withTrust = await resolveCatalog({ catalog: undefined, stateDir: dir, purpose: 'read', trust: [pub], now: soon });
  assert.equal(withTrust.source, 'cache');
});

test('catalog verify compares with the floor as well as the cache', () => {
  const dir = tempDir();
  const bytes = makeCatalog({ serial: 2026070107 });
  writeFileSync(floorPath(dir), JSON.stringify({ serial: 2026070107, sha256: sha256Hex(bytes) }), { mode: 0o600 });
  const previous = previousFor(dir, null);
  assert.ok(previous !== null);
  assert.equal(previous.serial, 2026070107);
  assert.throws(() => checkSerial(loadCatalog(2026070106), 'x', previous, 'c.xml'), /serial 2026070106 is older than the serial floor \(floor\.json\)'s \(2026070107\): refused as a replay/);
});

function loadCatalog(serial: number) {
  return parseCatalog(makeCatalog({ serial }).toString('utf8'), 'c.xml');
}
