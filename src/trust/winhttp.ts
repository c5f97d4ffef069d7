/**
 * The machine-wide WinHTTP proxy (what `netsh winhttp set proxy` writes): decoding the REG_BINARY value
 * `WinHttpSettings` under `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Internet Settings\Connections`,
 * and choosing the proxy URL for a target the way WinHTTP does.
 *
 * The value is undocumented. Its layout, all integers little-endian DWORDs, as decoded by vbfox/proxyconf
 * (README "Technical information" and src/proxyconf/winhttp/serialization.rs) and by Xavier Plantefève's
 * Get-WinHttpProxySettings (stephannn/WinHttpProxySettings, WinHttpProxySettings.ps1), and matching the
 * direct-access value Microsoft publishes (KB 4494447, "Use Group Policy to apply WinHTTP proxy settings",
 * `1800000000000000010000000000000000000000`):
 *
 *   offset 0   version  0x18 or 0x28 (netsh); 0x3C or 0x46 when written in the WinINet (IE) layout
 *   offset 4   counter  incremented on every change; ignored
 *   offset 8   flags    bit 0x1 always set, bit 0x2 = use the proxy below (1: direct access, 3: proxy)
 *   offset 12  N        length of the proxy server string
 *   offset 16  N bytes  proxy server string, ASCII, no terminator (e.g. `proxy.contoso.com:8080`)
 *   16+N       M        length of the bypass list
 *   20+N       M bytes  bypass list, ASCII, no terminator (e.g. `<local>;*.contoso.com`)
 *
 * Anything after the bypass list (the WinINet layout's auto-config URL and reserved bytes) is ignored.
 */
import { inputError, type ExmitError } from '../errors.ts';

/** A WinHTTP proxy setting that is in use. */
export interface WinHttpProxy {
  /** The proxy server list as `netsh winhttp show proxy` prints it: `proxy.contoso.com:8080` or `http=p1:80;https=p2:8443`. */
  proxy: string;
  /** The bypass list's entries (`<local>`, `*.contoso.com`, `10.*`, `feeds.contoso.com`...), trimmed, empty ones dropped. */
  bypass: string[];
}

/** Versions (first DWORD) whose layout starts as described above. */
const KNOWN_VERSIONS = new Set([0x18, 0x28, 0x3c, 0x46]);
/** Flags bit: use the static proxy. */
const FLAG_PROXY = 0x02;
/** Version, counter, flags and the proxy string's length. */
const HEADER_BYTES = 16;
const HINT = 'Check it with "netsh winhttp show proxy"; "netsh winhttp reset proxy" or "netsh winhttp set proxy ..." rewrites it, or give the proxy with --proxy.';

/**
 * Decodes the `WinHttpSettings` bytes; `what` names the source in errors (e.g. the registry path).
 * Returns null for direct access: an empty value, flags without the proxy bit, or an empty proxy string.
 * A value too short for its header or for the lengths it declares (including one that stops right after
 * the proxy string, without the bypass list's length), an unknown version, or a string with a byte outside
 * printable ASCII is an inputError naming `what`; nothing is read past the end.
 */
export function parseWinHttpSettings(bytes: Buffer, what: string): WinHttpProxy | null {
  if (bytes.length === 0) return null;
  if (bytes.length < HEADER_BYTES) throw bad(what, `the value is ${bytes.length} byte${bytes.length === 1 ? '' : 's'} long, shorter than the ${HEADER_BYTES}-byte header`);
  const version = bytes.readUInt32LE(0);
  if (!KNOWN_VERSIONS.has(version)) throw bad(what, `unknown format version 0x${version.toString(16)} (expected 0x18 or 0x28)`);
  const flags = bytes.readUInt32LE(8);
  const proxy = readString(bytes, 12, 'proxy server', what);
  const bypass = readString(bytes, proxy.end, 'bypass list', what);
  const server = proxy.text.trim();
  if ((flags & FLAG_PROXY) === 0 || server === '') return null;
  return { proxy: server, bypass: splitBypass(bypass.text) };
}

/** Reads a DWORD length at `offset` and that many printable ASCII bytes after it. */
function readString(bytes: Buffer, offset: number, field: string, what: string): { text: string; end: number } {
  if (offset + 4 > bytes.length) throw bad(what, `the value ends at byte ${bytes.length}, before the ${field} length at byte ${offset}`);
  const length = bytes.readUInt32LE(offset);
  const start = offset + 4;
  if (length > bytes.length - start) throw bad(what, `the ${field} length ${length} at byte ${offset} runs past the end of the ${bytes.length}-byte value`);
  for (let i = start; i < start + length; i++) {
    const byte = bytes[i] as number;
    if (byte < 0x20 || byte > 0x7e) throw bad(what, `the ${field} has byte 0x${byte.toString(16).padStart(2, '0')} at byte ${i}, not printable ASCII`);
  }
  return { text: bytes.toString('latin1', start, start + length), end: start + length };
}

/** Bypass entries: separated by semicolons (netsh), whitespace or commas; trimmed; empty ones dropped. */
function splitBypass(text: string): string[] {
  return text.split(/[;,\s]+/).filter((entry) => entry !== '');
}

function bad(what: string, reason: string): ExmitError {
  return inputError(`${oneLine(what)}: not a valid WinHTTP proxy setting: ${reason}`, HINT);
}

function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f]+/g, ' ');
}

/**
 * The proxy URL (`http://host:port`) WinHTTP would use for `target`, or null for a direct connection:
 * the target's host matches the bypass list, the proxy list has no entry for the target's scheme, or the
 * target is neither http: nor https: (WinHTTP only speaks those).
 *
 * Choosing the entry (Microsoft, "ProxyCfg.exe, a Proxy Configuration Tool", and WINHTTP_PROXY_INFO: entries
 * `[<scheme>=][<scheme>://]<server>[:<port>]` separated by semicolons or whitespace): the first `https=`
 * entry for an https target (`http=` for http); failing that, the first entry without `scheme=`, which
 * WinHTTP uses "as the default proxy for any protocols that do not have a specified proxy". There is no
 * fallback from https to an `http=` entry: `http=p1:80` alone sends https directly, as WinHTTP does.
 *
 * The chosen entry becomes `http://host:port`; the port defaults to 80 (how WinHTTP and WinINet read a
 * bare `host`, even for `https=host`), or 443 when the entry itself says `https://`. Entries for other
 * schemes (`ftp=`, `socks=`) never apply. A chosen entry that names another proxy scheme (`socks://host`),
 * is not `host[:port]`, or has a port outside 1-65535 is an inputError naming the proxy list, rather than
 * a silent direct connection.
 *
 * The bypass list, checked first: `<local>` matches host names without a dot (`exchange01`, `localhost`)
 * but no IP literal; an entry with `*` matches the whole host as a wildcard (`*.contoso.com` matches
 * `mail.contoso.com` but not `contoso.com`; `10.*`; `*contoso*`); any other entry matches the host exactly.
 * Matching ignores case; an IPv6 host is compared without its brackets. An entry may carry a scheme
 * (`https://secure.contoso.com` bypasses only https targets) and a port (`host:8443` bypasses only that
 * port, counting 80/443 for a URL without one). Older ProxyCfg documentation allows `*` only at the left;
 * current WinHTTP and WinINet accept it anywhere (`10.*`), and so does this.
 */
export function winHttpProxyUrl(settings: WinHttpProxy, target: URL): string | null {
  const scheme = target.protocol.slice(0, -1).toLowerCase();
  if (scheme !== 'http' && scheme !== 'https') return null;
  const host = bareHost(target.hostname);
  const port = target.port === '' ? (scheme === 'https' ? 443 : 80) : Number(target.port);
  if (settings.bypass.some((entry) => bypassMatches(entry, scheme, host, port))) return null;
  const entry = chooseProxy(settings.proxy, scheme);
  return entry === null ? null : proxyUrl(entry, settings.proxy);
}

/** The proxy list entry for `scheme` (without its `scheme=` prefix), else the first entry without one, else null. */
function chooseProxy(list: string, scheme: string): string | null {
  let fallback: string | null = null;
  for (const entry of list.split(/[;\s]+/)) {
    if (entry === '') continue;
    const match = /^([a-z][a-z0-9+.-]*)=(.*)$/i.exec(entry);
    if (match === null) {
      fallback ??= entry;
      continue;
    }
    const value = match[2] as string;
    if ((match[1] as string).toLowerCase() === scheme && value !== '') return value;
  }
  return fallback;
}

/** `[http://|https://]host[:port]` as a proxy URL with an explicit port. */
function proxyUrl(entry: string, list: string): string {
  const prefix = /^([a-z][a-z0-9+.-]*):\/\//i.exec(entry);
  const proxyScheme = prefix === null ? 'http' : (prefix[1] as string).toLowerCase();
  if (proxyScheme !== 'http' && proxyScheme !== 'https') throw badProxy(list, `"${entry}" is a ${proxyScheme} proxy; only http proxies are supported`);
  const rest = (prefix === null ? entry : entry.slice(prefix[0].length)).replace(/\/$/, '');
  const parts = /^(\[[0-9a-f:.]+\]|[a-z0-9_.-]+)(?::(\d{1,5}))?$/i.exec(rest);
  if (parts === null) throw badProxy(list, `"${entry}" is not host:port`);
  const port = parts[2] === undefined ? (proxyScheme === 'https' ? 443 : 80) : Number(parts[2]);
  if (port < 1 || port > 65535) throw badProxy(list, `"${entry}" has port ${parts[2] ?? ''}, outside 1-65535`);
  return `${proxyScheme}://${(parts[1] as string).toLowerCase()}:${port}`;
}

function badProxy(list: string, reason: string): ExmitError {
  return inputError(`WinHTTP proxy "${oneLine(list)}": ${reason}`, HINT);
}

/** Whether one bypass entry covers the target. */
function bypassMatches(raw: string, scheme: string, host: string, port: number): boolean {
  let entry = raw.trim().toLowerCase();
  if (entry === '<local>') return !host.includes('.') && !host.includes(':');
  const prefix = /^([a-z][a-z0-9+.-]*):\/\//.exec(entry);
  if (prefix !== null) {
    if (prefix[1] !== scheme) return false;
    entry = entry.slice(prefix[0].length);
  }
  entry = entry.replace(/\/$/, '');
  const { pattern, entryPort } = splitHostPort(entry);
  if (entryPort !== null && entryPort !== port) return false;
  if (pattern === '') return false;
  return pattern.includes('*') ? wildcard(pattern).test(host) : pattern === host;
}

/** `[v6]:port`, `host:port` (one colon, digits after it) or a host pattern alone (a bare IPv6 address included). */
function splitHostPort(entry: string): { pattern: string; entryPort: number | null } {
  const bracketed = /^\[([^\]]*)\](?::(\d{1,5}))?$/.exec(entry);
  if (bracketed !== null) return { pattern: bracketed[1] as string, entryPort: bracketed[2] === undefined ? null : Number(bracketed[2]) };
  const hostPort = /^([^:]*):(\d{1,5})$/.exec(entry);
  if (hostPort !== null) return { pattern: hostPort[1] as string, entryPort: Number(hostPort[2]) };
  return { pattern: entry, entryPort: null };
}

/** A whole-string, case-insensitive matcher where `*` is any run of characters and everything else is literal. */
function wildcard(pattern: string): RegExp {
  const body = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*');
  return new RegExp(`^${body}$`, 'i');
}

/** A URL hostname without IPv6 brackets, lower case. */
function bareHost(hostname: string): string {
  const host = hostname.toLowerCase();
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
