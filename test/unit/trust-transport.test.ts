// The feed's transport: TLS verification that the environment cannot switch off, never HTTPS to HTTP, no credentials shown.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { ExmitError } from '../../src/errors.ts';
import { parseConfig } from '../../src/state/config.ts';
import { checkFeedUrl, FeedUnreachableError, tlsEnvironmentWarnings } from '../../src/trust/download.ts';
import { redactCredentials } from '../../src/trust/redact.ts';
import { updateFromFeed, type UpdateRequest } from '../../src/trust/update.ts';
import { configKey, makeCatalog, makeCertificate, makeKey, startFeed, startProxy, tempDir, writeConfig, type Feed, type Proxy } from './trust-fixtures.ts';

const key = makeKey('feed');
const tls = makeCertificate(tempDir());
let feed: Feed;
let proxy: Proxy;

before(async () => {
  feed = await startFeed(tls);
  proxy = await startProxy();
  const bytes = makeCatalog({ serial: 2026070150 });
  feed.routes.set('/catalog.xml', { body: bytes });
  feed.routes.set('/catalog.xml.sig', { body: key.sign(bytes) });
});
after(async () => {
  await feed.close();
  await proxy.close();
});

function request(extra: Partial<UpdateRequest> = {}): UpdateRequest {
  const dir = tempDir();
  writeConfig(dir, { trustedKeys: [configKey(key)] });
  return { stateDir: dir, url: `${feed.url}/catalog.xml`, extraKeys: [], proxy: null, ca: tls.cert, allowInsecure: false, allowExpired: false, timeoutMs: 5000, now: new Date('2026-07-15T00:00:00Z'), env: {}, ...extra };
}

test('NODE_TLS_REJECT_UNAUTHORIZED=0 does not turn certificate checks off, direct or through the proxy tunnel, and is warned about', async () => {
  const saved = process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
  process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = '0';
  try {
    const env = { NODE_TLS_REJECT_UNAUTHORIZED: '0' };
    await assert.rejects(updateFromFeed(request({ ca: null, env })), (e: unknown) => e instanceof FeedUnreachableError && /self-signed|certificate/i.test(e.message));
    await assert.rejects(updateFromFeed(request({ ca: null, env, proxy: proxy.url })), (e: unknown) => e instanceof FeedUnreachableError && /self-signed|certificate/i.test(e.message));
    const result = await updateFromFeed(request({ env }));
    assert.equal(result.outcome, 'updated');
    assert.match(result.warnings.join('\n'), /NODE_TLS_REJECT_UNAUTHORIZED=0 is set: ignored, exmit verifies the feed's certificate/);
  } finally {
    if (saved === undefined) delete process.env['NODE_TLS_REJECT_UNAUTHORIZED'];
    else process.env['NODE_TLS_REJECT_UNAUTHORIZED'] = saved;
  }
});

test('NODE_EXTRA_CA_CERTS is warned about; a clean environment gives no warning', () => {
  assert.match(tlsEnvironmentWarnings({ NODE_EXTRA_CA_CERTS: '/etc/extra.pem' }).join('\n'), /NODE_EXTRA_CA_CERTS=\/etc\/extra\.pem is set: the certificates in it are trusted for the feed/);
  assert.deepEqual(tlsEnvironmentWarnings({ NODE_TLS_REJECT_UNAUTHORIZED: '1' }), []);
});

test('never from HTTPS to HTTP, not even with --allow-http', async () => {
  feed.routes.set('/moved.xml', { status: 302, headers: { location: `http://127.0.0.1:${feed.port}/catalog.xml` } });
  await assert.rejects(updateFromFeed(request({ url: `${feed.url}/moved.xml`, allowInsecure: true })), (e: unknown) => e instanceof ExmitError && /redirected to http:\/\/127\.0\.0\.1:\d+\/catalog\.xml, which is not HTTPS: refused/.test(e.message));
});

test('a feed URL with a user name or password is refused, and the password is never shown', async () => {
  for (const url of ['https://alice:s3cret@feed.contoso.com/catalog.xml', 'https://alice@feed.contoso.com/catalog.xml']) {
    assert.throws(() => checkFeedUrl(url, false), (e: unknown) => e instanceof ExmitError && e.code === 1 && /credentials in a feed URL are refused/.test(e.message) && !/s3cret/.test(e.message + (e.hint ?? '')), url);
  }
  await assert.rejects(updateFromFeed(request({ url: 'https://alice:s3cret@127.0.0.1:1/c.xml' })), (e: unknown) => e instanceof ExmitError && !/s3cret/.test(e.message + (e.hint ?? '')) && /alice:\*\*\*@/.test(e.message));
});

test('a proxy password never appears in a message', async () => {
  await assert.rejects(updateFromFeed(request({ proxy: 'http://bob:pa55word@127.0.0.1:1' })), (e: unknown) => e instanceof FeedUnreachableError && !/pa55word/.test(e.message + (e.hint ?? '')));
  assert.throws(() => parseConfig(JSON.stringify({ proxy: 'http://bob:pa55word@[proxy' }), 'config.json'), (e: unknown) => e instanceof ExmitError && /proxy "http:\/\/bob:\*\*\*@\[proxy" is not a URL/.test(e.message) && !/pa55word/.test(e.message));
  assert.equal(redactCredentials('through http://bob:pa55word@proxy:8080 and https://u:p@h/x'), 'through http://bob:***@proxy:8080 and https://u:***@h/x');
});
