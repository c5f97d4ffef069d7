import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExmitError } from '../../src/errors.ts';
import { parseWinHttpSettings, winHttpProxyUrl, type WinHttpProxy } from '../../src/trust/winhttp.ts';

const WHAT = 'HKLM\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Internet Settings\\Connections\\WinHttpSettings';

/**
 * A WinHttpSettings value as netsh writes it. Layout (little-endian DWORDs) from vbfox/proxyconf's README
 * ("Technical information") and src/proxyconf/winhttp/serialization.rs, and Xavier Plantefève's
 * WinHttpProxySettings.ps1: version, counter, flags (1 direct, 3 proxy), proxy length, proxy (ASCII),
 * bypass length, bypass (ASCII).
 */
function settings(proxy: string, bypass: string, options: { version?: number; counter?: number; flags?: number } = {}): Buffer {
  const dword = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  return Buffer.concat([
    dword(options.version ?? 0x28),
    dword(options.counter ?? 0),
    dword(options.flags ?? (proxy === '' ? 1 : 3)),
    dword(proxy.length),
    Buffer.from(proxy, 'latin1'),
    dword(bypass.length),
    Buffer.from(bypass, 'latin1'),
  ]);
}

function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

/** `netsh winhttp set proxy proxy.contoso.com:8080 "<local>;*.contoso.com"`, byte for byte (the counter is 0 here; it varies). */
const NETSH_PROXY_WITH_BYPASS = hex(`
  28 00 00 00  00 00 00 00  03 00 00 00
  16 00 00 00  70 72 6f 78 79 2e 63 6f 6e 74 6f 73 6f 2e 63 6f 6d 3a 38 30 38 30
  15 00 00 00  3c 6c 6f 63 61 6c 3e 3b 2a 2e 63 6f 6e 74 6f 73 6f 2e 63 6f 6d
`);

/** The direct-access value Microsoft documents (KB 4494447, "How proxy data is stored in Windows"), as `netsh winhttp reset proxy` leaves it. */
const MICROSOFT_DIRECT_ACCESS = hex('1800000000000000010000000000000000000000');

function isInputError(pattern: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof ExmitError, `expected an ExmitError, got ${String(e)}`);
    assert.equal(e.code, 1);
    assert.ok(e.message.startsWith(`${WHAT}: `), e.message);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    assert.ok(!/\bat .+:\d+:\d+/.test(e.message), `no stack trace: ${e.message}`);
    assert.match(e.hint ?? '', /netsh winhttp/);
    return true;
  };
}

function proxyFor(proxy: string, bypass: string[], url: string): string | null {
  return winHttpProxyUrl({ proxy, bypass }, new URL(url));
}

test('direct access is null: the documented reset value, 0x28 with flags 1, an empty value, and flags 3 with an empty proxy', () => {
  assert.equal(parseWinHttpSettings(MICROSOFT_DIRECT_ACCESS, WHAT), null);
  assert.deepEqual(MICROSOFT_DIRECT_ACCESS, settings('', '', { version: 0x18 }));
  assert.equal(parseWinHttpSettings(settings('', ''), WHAT), null);
  assert.equal(parseWinHttpSettings(Buffer.alloc(0), WHAT), null);
  assert.equal(parseWinHttpSettings(settings('', '', { flags: 3 }), WHAT), null);
  assert.equal(parseWinHttpSettings(settings('   ', '<local>', { flags: 3 }), WHAT), null);
  // a proxy left behind with the proxy bit off is not in use
  assert.equal(parseWinHttpSettings(settings('proxy.contoso.com:8080', '<local>', { flags: 1 }), WHAT), null);
  // auto-detect alone (0x9) is not a static proxy
  assert.equal(parseWinHttpSettings(settings('', '', { flags: 9 }), WHAT), null);
});

test('a proxy without a bypass list', () => {
  assert.deepEqual(parseWinHttpSettings(settings('proxy.contoso.com:8080', '', { counter: 7 }), WHAT), { proxy: 'proxy.contoso.com:8080', bypass: [] });
});

test('the bytes netsh writes for proxy.contoso.com:8080 "<local>;*.contoso.com" decode to that proxy and bypass list', () => {
  assert.deepEqual(NETSH_PROXY_WITH_BYPASS, settings('proxy.contoso.com:8080', '<local>;*.contoso.com'));
  assert.deepEqual(parseWinHttpSettings(NETSH_PROXY_WITH_BYPASS, WHAT), { proxy: 'proxy.contoso.com:8080', bypass: ['<local>', '*.contoso.com'] });
});

test('a per-scheme list is kept as written; bypass entries split on ; whitespace and commas, empty ones dropped', () => {
  const parsed = parseWinHttpSettings(settings('http=p1:80;https=p2:8443', ' <local> ;; *.contoso.com  10.*,feeds.fabrikam.com; '), WHAT);
  assert.deepEqual(parsed, { proxy: 'http=p1:80;https=p2:8443', bypass: ['<local>', '*.contoso.com', '10.*', 'feeds.fabrikam.com'] });
});

test('the WinINet-style versions 0x3C/0x46 decode too, ignoring the auto-config URL and reserved bytes after the bypass list', () => {
  const autoConfig = 'http://wpad/wpad.dat';
  const tail = Buffer.concat([Buffer.from([autoConfig.length, 0, 0, 0]), Buffer.from(autoConfig), Buffer.alloc(32)]);
  for (const version of [0x3c, 0x46]) {
    const bytes = Buffer.concat([settings('proxy:3128', '<local>', { version, flags: 0x0b }), tail]);
    assert.deepEqual(parseWinHttpSettings(bytes, WHAT), { proxy: 'proxy:3128', bypass: ['<local>'] });
  }
});

test('every strict prefix of a valid value is rejected with a one-line inputError naming the source (length 0 alone is direct access)', () => {
  for (const full of [NETSH_PROXY_WITH_BYPASS, settings('proxy.contoso.com:8080', ''), MICROSOFT_DIRECT_ACCESS]) {
    for (let length = 1; length < full.length; length++) {
      // a copy of exactly that length, so nothing past it can be read
      const prefix = Buffer.from(full.subarray(0, length));
      assert.throws(() => parseWinHttpSettings(prefix, WHAT), isInputError(/not a valid WinHTTP proxy setting: /), `length ${length} of ${full.length}`);
    }
  }
  assert.throws(() => parseWinHttpSettings(NETSH_PROXY_WITH_BYPASS.subarray(0, 15), WHAT), isInputError(/15 bytes long, shorter than the 16-byte header/));
  assert.throws(() => parseWinHttpSettings(NETSH_PROXY_WITH_BYPASS.subarray(0, 38), WHAT), isInputError(/ends at byte 38, before the bypass list length at byte 38/));
  assert.throws(() => parseWinHttpSettings(NETSH_PROXY_WITH_BYPASS.subarray(0, 50), WHAT), isInputError(/bypass list length 21 at byte 38 runs past the end of the 50-byte value/));
});

test('lengths pointing past the end are rejected, however large', () => {
  for (const length of [48, 0x100, 0x7fffffff, 0xffffffff]) {
    const bytes = Buffer.from(NETSH_PROXY_WITH_BYPASS);
    bytes.writeUInt32LE(length, 12);
    assert.throws(() => parseWinHttpSettings(bytes, WHAT), isInputError(new RegExp(`proxy server length ${length} at byte 12 runs past the end`)), String(length));
  }
  for (const length of [22, 0xffffffff]) {
    const bytes = Buffer.from(NETSH_PROXY_WITH_BYPASS);
    bytes.writeUInt32LE(length, 38);
    assert.throws(() => parseWinHttpSettings(bytes, WHAT), isInputError(/bypass list length \d+ at byte 38 runs past the end/), String(length));
  }
  // a shorter declared proxy length makes the bypass length land inside the proxy string: garbage, caught
  const shifted = Buffer.from(NETSH_PROXY_WITH_BYPASS);
  shifted.writeUInt32LE(5, 12);
  assert.throws(() => parseWinHttpSettings(shifted, WHAT), isInputError(/bypass list length \d+ at byte 21 runs past the end/));
});

test('control characters and non-ASCII bytes in the strings, and unknown versions, are rejected', () => {
  for (const [proxy, bypass, byte] of [['proxy\u0000:8080', '', '0x00'], ['proxy:8080', '<local>\n', '0x0a'], ['pr\u00e9xy:8080', '', '0xe9'], ['proxy:8080', 'a\u007f', '0x7f']] as const) {
    assert.throws(() => parseWinHttpSettings(settings(proxy, bypass), WHAT), isInputError(new RegExp(`has byte ${byte} at byte \\d+, not printable ASCII`)), JSON.stringify(proxy + bypass));
  }
  const unknown = Buffer.from(NETSH_PROXY_WITH_BYPASS);
  unknown.writeUInt32LE(0x99, 0);
  assert.throws(() => parseWinHttpSettings(unknown, WHAT), isInputError(/unknown format version 0x99/));
  assert.throws(() => parseWinHttpSettings(Buffer.from('not a registry value at all, just text'), WHAT), isInputError(/unknown format version/));
});

test('a source name with a line break still gives a one-line message', () => {
  assert.throws(() => parseWinHttpSettings(Buffer.from([0x28]), 'reg\nvalue'), (e: unknown) => e instanceof ExmitError && e.message.startsWith('reg value: ') && !e.message.includes('\n'));
});

test('a bare host:port is the proxy for http and https; no port means 80; an http:// prefix is accepted', () => {
  assert.equal(proxyFor('proxy.contoso.com:8080', [], 'https://feeds.example.org/catalog.xml'), 'http://proxy.contoso.com:8080');
  assert.equal(proxyFor('proxy.contoso.com:8080', [], 'http://feeds.example.org/catalog.xml'), 'http://proxy.contoso.com:8080');
  assert.equal(proxyFor('proxy.contoso.com', [], 'https://feeds.example.org/'), 'http://proxy.contoso.com:80');
  assert.equal(proxyFor('http://Proxy.Contoso.com:3128/', [], 'https://feeds.example.org/'), 'http://proxy.contoso.com:3128');
  assert.equal(proxyFor('https://proxy.contoso.com', [], 'https://feeds.example.org/'), 'https://proxy.contoso.com:443');
  assert.equal(proxyFor('10.0.0.8:8080', [], 'https://feeds.example.org/'), 'http://10.0.0.8:8080');
  assert.equal(proxyFor('[fd00::8]:8080', [], 'https://feeds.example.org/'), 'http://[fd00::8]:8080');
});

test('a per-scheme list picks the entry for the target scheme; a bare entry is the default; https never falls back to http=', () => {
  const list = 'http=p1:80;https=p2:8443';
  assert.equal(proxyFor(list, [], 'https://feeds.example.org/'), 'http://p2:8443');
  assert.equal(proxyFor(list, [], 'http://feeds.example.org/'), 'http://p1:80');
  assert.equal(proxyFor('HTTPS=p2:8443 http=p1', [], 'http://feeds.example.org/'), 'http://p1:80');
  assert.equal(proxyFor('http=p1:80', [], 'https://feeds.example.org/'), null);
  assert.equal(proxyFor('https=p2:8443', [], 'http://feeds.example.org/'), null);
  // the ProxyCfg example: "http=http://http_proxy other_proxy" uses other_proxy for https
  assert.equal(proxyFor('http=http://http_proxy other_proxy', [], 'https://feeds.example.org/'), 'http://other_proxy:80');
  assert.equal(proxyFor('http=http://http_proxy other_proxy', [], 'http://feeds.example.org/'), 'http://http_proxy:80');
  assert.equal(proxyFor('ftp=f:21;socks=s:1080', [], 'https://feeds.example.org/'), null);
  assert.equal(proxyFor('https=;fallback:3128', [], 'https://feeds.example.org/'), 'http://fallback:3128');
});

test('several proxies: the first usable for the scheme wins', () => {
  assert.equal(proxyFor('first:8080;second:8080', [], 'https://feeds.example.org/'), 'http://first:8080');
  assert.equal(proxyFor('  first:8080   second:8080 ', [], 'https://feeds.example.org/'), 'http://first:8080');
  assert.equal(proxyFor('https=a:1 https=b:2', [], 'https://feeds.example.org/'), 'http://a:1');
});

test('targets other than http and https get no proxy', () => {
  assert.equal(proxyFor('proxy:8080', [], 'file:///C:/feeds/catalog.xml'), null);
  assert.equal(proxyFor('proxy:8080', [], 'ftp://feeds.example.org/'), null);
});

test('an unusable chosen proxy entry is an inputError naming the proxy list, not a silent direct connection', () => {
  for (const [list, reason] of [['proxy:99999', /port 99999, outside 1-65535/], ['proxy:0', /port 0, outside/], ['socks://proxy:1080', /socks proxy/], ['proxy:80:81', /not host:port/], ['https=pro/xy', /not host:port/]] as const) {
    assert.throws(() => proxyFor(list, [], 'https://feeds.example.org/'), (e: unknown) => e instanceof ExmitError && e.code === 1 && e.message.startsWith('WinHTTP proxy "') && reason.test(e.message) && !e.message.includes('\n'), list);
  }
});

test('<local> bypasses names without a dot, not IP literals or dotted names', () => {
  const bypass = ['<local>'];
  assert.equal(proxyFor('proxy:8080', bypass, 'https://exchange01/owa'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'http://localhost:8080/'), null);
  assert.equal(proxyFor('proxy:8080', ['<LOCAL>'], 'https://EXCHANGE01/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://10.0.0.5/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://[::1]/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://mail.contoso.com/'), 'http://proxy:8080');
});

test('wildcard entries match the whole host, case-insensitively', () => {
  const bypass = ['*.contoso.com', '10.*', '*fabrikam*'];
  assert.equal(proxyFor('proxy:8080', bypass, 'https://mail.contoso.com/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://a.b.CONTOSO.com/'), null);
  assert.equal(proxyFor('proxy:8080', ['*.CONTOSO.COM'], 'https://mail.contoso.com/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://contoso.com/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://mail.contoso.com.evil.example/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://notcontoso.com/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://10.1.2.3/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://110.1.2.3/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://feeds.fabrikam.net/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://fabrikam/'), null);
  // regex metacharacters in an entry are literal
  assert.equal(proxyFor('proxy:8080', ['*.contoso.com'], 'https://mail-contoso.com/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', ['*'], 'https://anything.example/'), null);
});

test('plain entries match the host exactly, case-insensitively; IPv4 and IPv6 literals too', () => {
  const bypass = ['Feeds.Contoso.com', '192.168.1.10', '[fd00::10]', 'fd00::11'];
  assert.equal(proxyFor('proxy:8080', bypass, 'https://feeds.contoso.com/catalog.xml'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://www.feeds.contoso.com/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://contoso.com/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://192.168.1.10/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://192.168.1.100/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', bypass, 'https://[fd00::10]/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://[FD00::11]:8443/'), null);
  assert.equal(proxyFor('proxy:8080', bypass, 'https://[fd00::12]/'), 'http://proxy:8080');
});

test('an entry with a scheme applies to that scheme only; one with a port to that port only', () => {
  assert.equal(proxyFor('proxy:8080', ['https://secure.contoso.com'], 'https://secure.contoso.com/'), null);
  assert.equal(proxyFor('proxy:8080', ['https://secure.contoso.com'], 'http://secure.contoso.com/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', ['HTTP://*.contoso.com/'], 'http://a.contoso.com/'), null);
  assert.equal(proxyFor('proxy:8080', ['feeds.contoso.com:8443'], 'https://feeds.contoso.com:8443/'), null);
  assert.equal(proxyFor('proxy:8080', ['feeds.contoso.com:8443'], 'https://feeds.contoso.com/'), 'http://proxy:8080');
  assert.equal(proxyFor('proxy:8080', ['feeds.contoso.com:443'], 'https://feeds.contoso.com/'), null);
  assert.equal(proxyFor('proxy:8080', ['*.contoso.com:80'], 'http://a.contoso.com/'), null);
  assert.equal(proxyFor('proxy:8080', ['[fd00::10]:8443'], 'https://[fd00::10]:8443/'), null);
  assert.equal(proxyFor('proxy:8080', ['[fd00::10]:8443'], 'https://[fd00::10]/'), 'http://proxy:8080');
});

test('the netsh value end to end: the feed goes through the proxy, contoso hosts and short names go direct', () => {
  const parsed = parseWinHttpSettings(NETSH_PROXY_WITH_BYPASS, WHAT) as WinHttpProxy;
  assert.equal(winHttpProxyUrl(parsed, new URL('https://download.microsoft.com/catalog.xml')), 'http://proxy.contoso.com:8080');
  assert.equal(winHttpProxyUrl(parsed, new URL('https://feeds.contoso.com/catalog.xml')), null);
  assert.equal(winHttpProxyUrl(parsed, new URL('https://feedserver/catalog.xml')), null);
});
