/** End to end: the built CLI (bin/exmit.js) run as a child process against a loopback HTTPS feed and CONNECT proxy. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import { makeCatalog, makeCertificate, startFeed, startProxy, tempDir, type Feed, type Proxy } from '../unit/trust-fixtures.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const node = path.join(root, 'node_modules', '.bin', 'node');
const bin = path.join(root, 'bin', 'exmit.js');
const work = tempDir('exmit-e2e-');
const tls = makeCertificate(work);
let feed: Feed;
let proxy: Proxy;
/** A feed catalog newer than the bundled one (its serial is YYYYMMDDNN, so one more is the same day). */
const SERIAL = loadBundledCatalog().serial + 1;

/** Runs the CLI asynchronously (a synchronous spawn would block the in-process feed and proxy). */
async function exmit(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(node, [bin, ...args], { env: { PATH: process.env['PATH'], HOME: work, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

before(async () => {
  if (!existsSync(path.join(root, 'dist', 'cli.js')) || process.env['CI'] !== 'true') {
    // Build like `npm test` does; type errors elsewhere still emit, so only a missing entry fails.
    spawnSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', root], { stdio: 'ignore' });
  }
  assert.ok(existsSync(path.join(root, 'dist', 'cli.js')), 'dist/cli.js was not built');
  feed = await startFeed(tls);
  proxy = await startProxy();
});
after(async () => {
  await feed.close();
  await proxy.close();
});

test('keygen, sign, verify and update end to end through a proxy; 304; tampering refused with the cache unchanged; feed down falls back', async () => {
  const keys = path.join(work, 'keys');
  const kg = await exmit(['catalog', 'keygen', '--out', keys, '--name', 'contoso', '--json']);
  assert.equal(kg.code, 0, kg.stderr);
  const made = JSON.parse(kg.stdout) as { keyId: string; privateKey: string; publicKey: string };
  assert.match(made.keyId, /^[0-9a-f]{16}$/);
  assert.equal(statSync(made.privateKey).mode & 0o777, 0o600);
  const again = await exmit(['catalog', 'keygen', '--out', keys, '--name', 'contoso', '--json']);
  assert.equal(again.code, 1);
  assert.match((JSON.parse(again.stdout) as { error: { message: string } }).error.message, /already exists/);

  const site = tempDir('exmit-site-');
  const catalogFile = path.join(site, 'catalog.xml');
  writeFileSync(catalogFile, makeCatalog({ serial: SERIAL }));
  const signed = await exmit(['catalog', 'sign', catalogFile, '--key', made.privateKey, '--json']);
  assert.equal(signed.code, 0, signed.stderr);
  assert.equal((JSON.parse(signed.stdout) as { keyId: string }).keyId, made.keyId);

  // verify: unknown key without --trust, valid with it
  const state = path.join(work, 'state');
  const unknown = await exmit(['catalog', 'verify', catalogFile, '--state-dir', state, '--json']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stdout, /not a trusted key/);
  const verified = await exmit(['catalog', 'verify', catalogFile, '--trust', made.publicKey, '--state-dir', state, '--json']);
  assert.equal(verified.code, 0, verified.stdout);
  assert.equal((JSON.parse(verified.stdout) as { serial: number; valid: boolean }).serial, SERIAL);

  // a private key readable by others is refused
  chmodSync(made.privateKey, 0o644);
  const loose = await exmit(['catalog', 'sign', catalogFile, '--key', made.privateKey]);
  assert.equal(loose.code, 1);
  assert.match(loose.stderr, /chmod 600/);
  chmodSync(made.privateKey, 0o600);

  // publish on the HTTPS feed; servers trust the key through config.json
  const publish = (bytes: Buffer, sig: string, etag: string) => {
    feed.routes.set('/feed/catalog.xml', { body: bytes, headers: { etag } });
    feed.routes.set('/feed/catalog.xml.sig', { body: sig });
  };
  publish(readFileSync(catalogFile), readFileSync(`${catalogFile}.sig`, 'utf8'), '"a1"');
  mkdirSync(state, { mode: 0o700 });
  writeFileSync(path.join(state, 'config.json'), JSON.stringify({ trustedKeys: [JSON.parse(readFileSync(made.publicKey, 'utf8'))].map((k: Record<string, unknown>) => ({ keyId: k['keyId'], publicKey: k['publicKey'], name: k['name'] })), catalogUrl: `${feed.url}/feed/catalog.xml` }), { mode: 0o600 });
  const env = { HTTPS_PROXY: proxy.url };
  const update = await exmit(['catalog', 'update', '--state-dir', state, '--ca', tls.certFile, '--json'], env);
  assert.equal(update.code, 0, update.stdout + update.stderr);
  const result = JSON.parse(update.stdout) as { outcome: string; serial: number; etag: string; cache: string };
  assert.equal(result.outcome, 'updated');
  assert.equal(result.serial, SERIAL);
  assert.deepEqual(proxy.connects, [`127.0.0.1:${feed.port}`, `127.0.0.1:${feed.port}`]);
  const cacheFile = path.join(state, 'catalog-cache.json');
  const cached = readFileSync(cacheFile);

  // 304 on the second run, the ETag kept
  const notModified = await exmit(['catalog', 'update', '--state-dir', state, '--ca', tls.certFile, '--json'], env);
  assert.equal(notModified.code, 0);
  assert.equal((JSON.parse(notModified.stdout) as { outcome: string; etag: string }).outcome, 'not-modified');
  assert.equal(feed.requests.filter((r) => r.path === '/feed/catalog.xml').at(-1)?.headers['if-none-match'], '"a1"');

  // NO_PROXY: the proxy sees nothing
  proxy.connects.length = 0;
  const direct = await exmit(['catalog', 'update', '--state-dir', state, '--ca', tls.certFile, '--json'], { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' });
  assert.equal(direct.code, 0);
  assert.deepEqual(proxy.connects, []);

  // catalog list uses the cache and says so
  const list = await exmit(['catalog', 'list', '--state-dir', state, '--json']);
  assert.equal(list.code, 0, list.stderr);
  assert.deepEqual((JSON.parse(list.stdout) as { catalog: { source: string; serial: number } }).catalog.source, 'cache');

  // a tampered catalog on the feed (new ETag): exit 1, the reason, the cache unchanged
  const tampered = Buffer.from(readFileSync(catalogFile).toString().replace(`serial="${SERIAL}"`, `serial="${SERIAL + 1}"`));
  publish(tampered, readFileSync(`${catalogFile}.sig`, 'utf8'), '"a2"');
  const bad = await exmit(['catalog', 'update', '--state-dir', state, '--ca', tls.certFile, '--json'], env);
  assert.equal(bad.code, 1);
  const error = (JSON.parse(bad.stdout) as { error: { code: number; message: string; hint: string } }).error;
  assert.equal(error.code, 1);
  assert.match(error.message, /signature does not match/);
  assert.match(error.hint, new RegExp(`cached catalog \\(serial ${SERIAL}\\) is kept`));
  assert.equal(bad.stderr, '');
  assert.deepEqual(readFileSync(cacheFile), cached);

  // a slow feed times out
  feed.routes.set('/feed/catalog.xml', { hang: true });
  const slow = await exmit(['catalog', 'update', '--state-dir', state, '--ca', tls.certFile, '--timeout', '1'], env);
  assert.equal(slow.code, 1);
  assert.match(slow.stderr, /no complete answer within 1 s/);
  assert.deepEqual(readFileSync(cacheFile), cached);

  // feed down: update fails with exit 1; list --catalog URL too (the admin asked for that catalog), naming the cached one it would use without --catalog
  const down = await exmit(['catalog', 'update', '--state-dir', state, '--url', 'https://127.0.0.1:1/catalog.xml', '--ca', tls.certFile]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /cannot be reached/);
  const explicit = await exmit(['catalog', 'list', '--state-dir', state, '--catalog', 'https://127.0.0.1:1/catalog.xml', '--json']);
  assert.equal(explicit.code, 1, explicit.stdout);
  const explicitError = (JSON.parse(explicit.stdout) as { error: { code: number; message: string; hint: string } }).error;
  assert.match(explicitError.message, /^--catalog https:\/\/127\.0\.0\.1:1\/catalog\.xml: cannot be reached/);
  assert.match(explicitError.hint, new RegExp(`the cached one, serial ${SERIAL}`));
  assert.deepEqual(readFileSync(cacheFile), cached);

  // a state folder writable by others is refused, naming the path and the fix
  chmodSync(state, 0o777);
  const open = await exmit(['catalog', 'list', '--state-dir', state]);
  assert.equal(open.code, 1);
  assert.match(open.stderr, new RegExp(`${state.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is writable by group or others`));
  assert.match(open.stderr, /chmod 700/);
  chmodSync(state, 0o700);
});

test('sign refuses a catalog this exmit would refuse: requires excludes it, or a signed vocabulary break', async () => {
  const keys = tempDir('exmit-keys-');
  assert.equal((await exmit(['catalog', 'keygen', '--out', keys, '--name', 'k'])).code, 0);
  const site = tempDir('exmit-site-');
  const cases: [Buffer, RegExp][] = [
    [makeCatalog({ requires: '>=42.0.0' }), /requires exmit >=42\.0\.0, and this is exmit/],
    [makeCatalog({ action: '<remove-global-module name="RewriteModule"/>' }), /<remove-global-module name="RewriteModule">: module "RewriteModule" is outside the vocabulary/],
  ];
  for (const [bytes, reason] of cases) {
    const file = path.join(site, 'catalog.xml');
    writeFileSync(file, bytes);
    const signed = await exmit(['catalog', 'sign', file, '--key', path.join(keys, 'k.key')]);
    assert.equal(signed.code, 1, signed.stdout);
    assert.match(signed.stderr, reason);
    assert.equal(existsSync(`${file}.sig`), false);
  }
});
