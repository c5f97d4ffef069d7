import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExmitError } from '../../src/errors.ts';
import { defaultStateDir } from '../../src/state/paths.ts';
import { checkStateDir, ensureStateDir, readStateFile, writeFileAtomic } from '../../src/state/secure.ts';
import { readConfig, parseConfig } from '../../src/state/config.ts';
import { readCache, writeCache, sha256Hex } from '../../src/state/cache.ts';
import { configKey, makeCatalog, makeKey, tempDir, writeConfig } from './trust-fixtures.ts';

const NOBODY = 65534;

test('default state folder: %ProgramData%\\exmit on Windows, XDG_STATE_HOME or ~/.local/state elsewhere', () => {
  assert.equal(defaultStateDir({ ProgramData: 'D:\\PD' }, 'win32', 'C:\\Users\\a'), 'D:\\PD\\exmit');
  assert.equal(defaultStateDir({}, 'win32', 'C:\\Users\\a'), 'C:\\ProgramData\\exmit');
  assert.equal(defaultStateDir({ XDG_STATE_HOME: '/var/state' }, 'linux', '/home/a'), '/var/state/exmit');
  assert.equal(defaultStateDir({ XDG_STATE_HOME: 'relative' }, 'linux', '/home/a'), '/home/a/.local/state/exmit');
  assert.equal(defaultStateDir({}, 'darwin', '/Users/a'), '/Users/a/.local/state/exmit');
});

test('ensureStateDir creates the folder owner-only (0700)', () => {
  const dir = path.join(tempDir(), 'a', 'state');
  ensureStateDir(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.equal(checkStateDir(dir), true);
  assert.equal(checkStateDir(path.join(dir, 'missing')), false);
});

test('a state folder writable by group or others is refused, naming the path and the chmod fix', () => {
  const dir = tempDir();
  for (const mode of [0o770, 0o707, 0o777, 0o720]) {
    chmodSync(dir, mode);
    assert.throws(() => readConfig(dir), (e: unknown) => e instanceof ExmitError && e.code === 1 && e.message.includes(dir) && /writable by group or others/.test(e.message) && /chmod 700/.test(e.hint ?? ''), mode.toString(8));
  }
  chmodSync(dir, 0o755);
  assert.deepEqual(readConfig(dir).trustedKeys, []);
});

test('a config.json writable by others, or a symbolic link, is refused', () => {
  const dir = tempDir();
  writeConfig(dir, { blocked: ['owa-csp-xss'] });
  assert.deepEqual(readConfig(dir).blocked, ['owa-csp-xss']);
  chmodSync(path.join(dir, 'config.json'), 0o666);
  assert.throws(() => readConfig(dir), (e: unknown) => e instanceof ExmitError && e.message.includes(path.join(dir, 'config.json')) && /chmod 600/.test(e.hint ?? ''));
  const other = tempDir();
  writeConfig(other, {});
  const linked = tempDir();
  symlinkSync(path.join(other, 'config.json'), path.join(linked, 'config.json'));
  assert.throws(() => readConfig(linked), /symbolic link/);
});

test('a state folder or file owned by another user is refused, naming the chown fix', () => {
  const asRoot = process.getuid?.() === 0;
  // As root (CI), files really are given to nobody; otherwise the runner is someone else than the owner.
  const runner = asRoot ? undefined : { platform: process.platform, uid: (process.getuid?.() ?? 0) + 1 };
  const dir = tempDir();
  writeConfig(dir, {});
  if (asRoot) chownSync(path.join(dir, 'config.json'), NOBODY, NOBODY);
  else chmodSync(dir, 0o700);
  if (asRoot) assert.throws(() => readConfig(dir, runner), (e: unknown) => e instanceof ExmitError && /state file .*config\.json is owned by uid 65534/.test(e.message) && /chown/.test(e.hint ?? ''));
  const dir2 = tempDir();
  if (asRoot) chownSync(dir2, NOBODY, NOBODY);
  assert.throws(() => checkStateDir(dir2, runner), (e: unknown) => e instanceof ExmitError && e.code === 1 && e.message.includes(dir2) && /owned by uid/.test(e.message) && /chown/.test(e.hint ?? ''));
  // a folder owned by root is accepted for any runner (root could write anywhere anyway)
  if (asRoot) assert.equal(checkStateDir(tempDir(), { platform: 'linux', uid: 1234 }), true);
});

test('config.json is validated field by field', () => {
  const key = makeKey();
  const file = '/s/config.json';
  const config = parseConfig(JSON.stringify({ trustedKeys: [configKey(key), configKey(makeKey(), true)], catalogUrl: 'https://feed.contoso.com/catalog.xml', proxy: 'http://proxy:8080', blocked: ['a'] }), file);
  assert.equal(config.trustedKeys.length, 2);
  assert.equal(config.trustedKeys[1]?.retired, true);
  assert.throws(() => parseConfig('{', file), /\/s\/config\.json: not valid JSON/);
  assert.throws(() => parseConfig('{"trustedkeys": []}', file), /unknown field "trustedkeys"/);
  assert.throws(() => parseConfig('{"catalogUrl": "not a url"}', file), /catalogUrl "not a url" is not a URL/);
  assert.throws(() => parseConfig('{"blocked": "x"}', file), /blocked must be an array/);
  assert.throws(() => parseConfig(JSON.stringify({ trustedKeys: [configKey(key), configKey(key)] }), file), /listed twice/);
  assert.throws(() => parseConfig(JSON.stringify({ trustedKeys: [{ keyId: 'x' }] }), file), /trustedKeys\[0\]: publicKey is missing/);
});

test('writeFileAtomic replaces a file whole, owner-only, leaving no temporary file', () => {
  const dir = tempDir();
  const file = path.join(dir, 'f.json');
  writeFileAtomic(file, 'one');
  writeFileAtomic(file, 'two');
  assert.equal(readFileSync(file, 'utf8'), 'two');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.deepEqual(readdirSync(dir), ['f.json']);
});

test('the cache round-trips, is checked on read, and a damaged one names the file', () => {
  const dir = path.join(tempDir(), 'state');
  const key = makeKey();
  const catalog = makeCatalog();
  writeCache(dir, { url: 'https://x/c.xml', etag: '"e1"', lastModified: null, fetchedAt: '2026-07-01T00:00:00.000Z', serial: 2026070101, sha256: sha256Hex(catalog), key: { keyId: key.trusted.keyId, publicKey: key.trusted.publicKey, name: null }, signature: key.sign(catalog), catalog });
  const entry = readCache(dir);
  assert.ok(entry !== null);
  assert.deepEqual(entry.catalog, catalog);
  assert.equal(entry.etag, '"e1"');
  const file = path.join(dir, 'catalog-cache.json');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const doc = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...doc, sha256: '00' }), { mode: 0o600 });
  assert.throws(() => readCache(dir), (e: unknown) => e instanceof ExmitError && e.message.includes(file) && /damaged cache/.test(e.message));
  chmodSync(file, 0o622);
  assert.throws(() => readCache(dir), /writable by group or others/);
  mkdirSync(path.join(dir, 'x'));
  assert.equal(readStateFile(dir, path.join(dir, 'none.json'), 10), null);
  assert.throws(() => readStateFile(dir, path.join(dir, 'x'), 10), /not a regular file/);
});
