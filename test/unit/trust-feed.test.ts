import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExmitError } from '../../src/errors.ts';
import { FeedUnreachableError, proxySettings } from '../../src/trust/download.ts';
import { updateFromFeed, type UpdateRequest } from '../../src/trust/update.ts';
import type { WindowsHost } from '../../src/state/windows-acl.ts';
import { configKey, makeCatalog, makeCertificate, makeKey, startFeed, startProxy, tempDir, writeConfig, type Feed, type Proxy } from './trust-fixtures.ts';

const key = makeKey('feed');
const certDir = tempDir();
const tls = makeCertificate(certDir);
let feed: Feed;
let proxy: Proxy;

before(async () => {
  feed = await startFeed(tls);
  proxy = await startProxy();
});
after(async () => {
  await feed.close();
  await proxy.close();
});
beforeEach(() => {
  feed.routes.clear();
  feed.requests.length = 0;
  proxy.connects.length = 0;
});

function publish(serial: number, options: { etag?: string; lastModified?: string; catalog?: Buffer; sig?: string } = {}): Buffer {
  const bytes = options.catalog ?? makeCatalog({ serial });
  const headers: Record<string, string> = {};
  if (options.etag !== undefined) headers['etag'] = options.etag;
  if (options.lastModified !== undefined) headers['last-modified'] = options.lastModified;
  feed.routes.set('/catalog.xml', { body: bytes, headers });
  feed.routes.set('/catalog.xml.sig', { body: options.sig ?? key.sign(bytes) });
  return bytes;
}

function stateWithKey(): string {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key)], catalogUrl: `${feed.url}/catalog.xml` });
  return dir;
}

function request(stateDir: string, extra: Partial<UpdateRequest> = {}): UpdateRequest {
  return { stateDir, url: null, extraKeys: [], proxy: null, ca: tls.cert, allowInsecure: false, allowExpired: false, timeoutMs: 5000, now: new Date('2026-07-15T00:00:00Z'), env: {}, ...extra };
}

function cacheBytes(stateDir: string): Buffer {
  return readFileSync(path.join(stateDir, 'catalog-cache.json'));
}

test('update downloads, verifies and caches; a second run sends If-None-Match/If-Modified-Since and gets 304; the ETag is kept', async () => {
  const dir = stateWithKey();
  publish(2026070102, { etag: '"v2"', lastModified: 'Wed, 01 Jul 2026 00:00:00 GMT' });
  const first = await updateFromFeed(request(dir));
  assert.equal(first.outcome, 'updated');
  assert.equal(first.serial, 2026070102);
  assert.equal(first.keyId, key.trusted.keyId);
  assert.equal(first.etag, '"v2"');
  const before = cacheBytes(dir);
  const second = await updateFromFeed(request(dir));
  assert.equal(second.outcome, 'not-modified');
  assert.equal(second.etag, '"v2"');
  const conditional = feed.requests.filter((r) => r.path === '/catalog.xml')[1];
  assert.equal(conditional?.headers['if-none-match'], '"v2"');
  assert.equal(conditional?.headers['if-modified-since'], 'Wed, 01 Jul 2026 00:00:00 GMT');
  assert.equal(feed.requests.filter((r) => r.path === '/catalog.xml.sig').length, 1);
  assert.deepEqual(cacheBytes(dir), before);
  // a newer catalog replaces it
  publish(2026070103, { etag: '"v3"' });
  const third = await updateFromFeed(request(dir));
  assert.equal(third.outcome, 'updated');
  assert.equal(third.previousSerial, 2026070102);
  assert.equal((JSON.parse(cacheBytes(dir).toString()) as { etag: string }).etag, '"v3"');
});

test('every rejection leaves the cached catalog byte-for-byte unchanged and says the cache is kept', async () => {
  const dir = stateWithKey();
  publish(2026070110);
  await updateFromFeed(request(dir));
  const cached = cacheBytes(dir);
  const other = makeKey('other');
  const good = makeCatalog({ serial: 2026070111 });
  const tampered = Buffer.from(good);
  tampered[200] = (tampered[200] as number) ^ 1;
  const cases: [string, () => void, RegExp, Partial<UpdateRequest>?][] = [
    ['tampered catalog', () => publish(0, { catalog: tampered, sig: key.sign(good) }), /signature does not match/],
    ['tampered signature', () => publish(0, { catalog: good, sig: key.sign(good).replace(/"signature": "(.)/, (_m, c: string) => `"signature": "${c === 'A' ? 'B' : 'A'}`) }), /signature does not match/],
    ['missing signature', () => { publish(2026070111); feed.routes.delete('/catalog.xml.sig'); }, /HTTP 404/],
    ['unknown key', () => publish(0, { catalog: good, sig: other.sign(good) }), /not a trusted key/],
    ['older serial', () => publish(2026070109), /older than the cached catalog's/],
    ['same serial, other content', () => publish(0, { catalog: makeCatalog({ serial: 2026070110, title: 'Other' }) }), /content differs/],
    ['expired', () => publish(0, { catalog: makeCatalog({ serial: 2026070112, expires: '2026-07-10' }) }), /expired on 2026-07-10/],
    ['newer exmit needed', () => publish(0, { catalog: makeCatalog({ serial: 2026070113, requires: '>=42.0.0' }) }), /requires exmit >=42\.0\.0/],
    ['action outside the vocabulary', () => publish(0, { catalog: makeCatalog({ serial: 2026070114, action: '<service name="Spooler"/>' }) }), /outside the vocabulary/],
    ['oversize', () => publish(0, { catalog: Buffer.alloc(1024 * 1024 + 1, 0x20) }), /larger than 1048576 bytes/],
    ['slow server', () => { publish(2026070115); feed.routes.set('/catalog.xml', { hang: true }); }, /no complete answer within 0\.5 s/, { timeoutMs: 500 }],
    ['feed down', () => { feed.routes.clear(); }, /cannot be reached|HTTP 404/, { url: 'https://127.0.0.1:1/catalog.xml' }],
    ['plain http without --allow-http', () => publish(2026070116), /http URLs are refused without --allow-http/, { url: `http://127.0.0.1:${feed.port}/catalog.xml` }],
    ['untrusted certificate', () => publish(2026070117), /cannot be reached/, { ca: null }],
  ];
  for (const [name, arrange, reason, extra] of cases) {
    feed.routes.clear();
    arrange();
    await assert.rejects(updateFromFeed(request(dir, extra ?? {})), (e: unknown) => e instanceof ExmitError && e.code === 1 && reason.test(e.message) && /cached catalog \(serial 2026070110\) is kept/.test(e.hint ?? ''), name);
    assert.deepEqual(cacheBytes(dir), cached, `${name}: cache unchanged`);
  }
  // --allow-expired accepts the expired one
  feed.routes.clear();
  publish(0, { catalog: makeCatalog({ serial: 2026070112, expires: '2026-07-10' }) });
  assert.equal((await updateFromFeed(request(dir, { allowExpired: true }))).serial, 2026070112);
});

test('a retired key is refused and --trust cannot bring it back', async () => {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key, true)] });
  publish(2026070120);
  await assert.rejects(updateFromFeed(request(dir, { url: `${feed.url}/catalog.xml`, extraKeys: [key.trusted] })), /retired/);
  assert.equal(existsSync(path.join(dir, 'catalog-cache.json')), false);
});

test('--trust adds a key for the run', async () => {
  const dir = tempDir();
  publish(2026070121);
  await assert.rejects(updateFromFeed(request(dir, { url: `${feed.url}/catalog.xml` })), /not a trusted key/);
  const result = await updateFromFeed(request(dir, { url: `${feed.url}/catalog.xml`, extraKeys: [key.trusted] }));
  assert.equal(result.outcome, 'updated');
});

test('the proxy is used (HTTPS_PROXY, --proxy, config proxy) and NO_PROXY is honoured', async () => {
  publish(2026070130);
  const target = `127.0.0.1:${feed.port}`;
  await updateFromFeed(request(stateWithKey(), { env: { HTTPS_PROXY: proxy.url } }));
  assert.deepEqual(proxy.connects, [target, target]);
  proxy.connects.length = 0;
  await updateFromFeed(request(stateWithKey(), { proxy: proxy.url }));
  assert.deepEqual(proxy.connects, [target, target]);
  proxy.connects.length = 0;
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key)], catalogUrl: `${feed.url}/catalog.xml`, proxy: proxy.url });
  await updateFromFeed(request(dir));
  assert.deepEqual(proxy.connects, [target, target]);
  proxy.connects.length = 0;
  await updateFromFeed(request(stateWithKey(), { env: { HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1' } }));
  await updateFromFeed(request(stateWithKey(), { proxy: proxy.url, env: { no_proxy: 'localhost,127.0.0.1' } }));
  assert.deepEqual(proxy.connects, []);
  assert.deepEqual(proxySettings(null, { HTTP_PROXY: 'http://p:1' }), { httpProxy: 'http://p:1', httpsProxy: 'http://p:1', noProxy: '' });
  assert.deepEqual(proxySettings(null, {}), { httpProxy: '', httpsProxy: '', noProxy: '' });
});

/** The WinHttpSettings value netsh writes for a proxy and bypass list (layout: src/trust/winhttp.ts). */
function winHttpValue(proxyServer: string, bypass: string): Buffer {
  const dword = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
  return Buffer.concat([dword(0x28), dword(7), dword(3), dword(proxyServer.length), Buffer.from(proxyServer, 'ascii'), dword(bypass.length), Buffer.from(bypass, 'ascii')]);
}

/** A Windows host that only answers the WinHTTP question (the state folder is a POSIX one in these tests). */
function winHttpHost(value: Buffer | null): WindowsHost & { asked: number } {
  const host = {
    asked: 0,
    identity: async () => { throw new Error('not asked in this test'); },
    security: async () => { throw new Error('not asked in this test'); },
    createSecure: async () => { throw new Error('not asked in this test'); },
    winHttpSettings: async () => { host.asked++; return value; },
  };
  return host;
}

test('on Windows the WinHTTP proxy is used when nothing else names one, with its bypass list; an explicit or environment proxy wins', async () => {
  publish(2026070132);
  const target = `127.0.0.1:${feed.port}`;
  const proxyServer = proxy.url.replace(/^http:\/\//, '');
  const host = winHttpHost(winHttpValue(proxyServer, '<local>;*.contoso.com'));
  await updateFromFeed(request(stateWithKey(), { windows: host }));
  assert.deepEqual(proxy.connects, [target, target]);
  assert.equal(host.asked, 1);
  proxy.connects.length = 0;
  // The bypass list sends the loopback feed direct.
  await updateFromFeed(request(stateWithKey(), { windows: winHttpHost(winHttpValue(proxyServer, '<local>;127.0.0.*')) }));
  assert.deepEqual(proxy.connects, []);
  // netsh winhttp reset proxy: direct access.
  await updateFromFeed(request(stateWithKey(), { windows: winHttpHost(winHttpValue('', '')) }));
  assert.deepEqual(proxy.connects, []);
  // HTTPS_PROXY or --proxy wins, and the registry is not even read.
  const unused = winHttpHost(winHttpValue('127.0.0.1:1', ''));
  await updateFromFeed(request(stateWithKey(), { windows: unused, env: { HTTPS_PROXY: proxy.url } }));
  await updateFromFeed(request(stateWithKey(), { windows: unused, proxy: proxy.url }));
  assert.equal(unused.asked, 0);
  assert.deepEqual(proxy.connects, [target, target, target, target]);
  // A damaged value is one clear error naming the registry value; nothing is cached.
  const dir = stateWithKey();
  await assert.rejects(updateFromFeed(request(dir, { windows: winHttpHost(winHttpValue(proxyServer, '<local>').subarray(0, 30)) })), (e: unknown) => e instanceof ExmitError && /WinHttpSettings/.test(e.message) && /--proxy/.test(e.hint ?? ''));
  assert.equal(existsSync(path.join(dir, 'catalog-cache.json')), false);
});

test('a proxy that is down makes the feed unreachable', async () => {
  publish(2026070131);
  await assert.rejects(updateFromFeed(request(stateWithKey(), { proxy: 'http://127.0.0.1:1' })), (e: unknown) => e instanceof FeedUnreachableError);
});

test('file: URLs only with --allow-http; redirects to plain http are refused', async () => {
  const dir = stateWithKey();
  const folder = tempDir();
  const bytes = makeCatalog({ serial: 2026070140 });
  writeFileSync(path.join(folder, 'c.xml'), bytes);
  writeFileSync(path.join(folder, 'c.xml.sig'), key.sign(bytes));
  const url = `file://${folder}/c.xml`;
  await assert.rejects(updateFromFeed(request(dir, { url })), /file URLs are refused without --allow-http/);
  assert.equal((await updateFromFeed(request(dir, { url, allowInsecure: true }))).serial, 2026070140);
  feed.routes.set('/moved.xml', { status: 302, headers: { location: `http://127.0.0.1:${feed.port}/catalog.xml` } });
  await assert.rejects(updateFromFeed(request(stateWithKey(), { url: `${feed.url}/moved.xml` })), /not HTTPS: refused/);
});
