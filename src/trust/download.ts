/**
 * Fetching a feed's catalog and signature: HTTPS (plain http and file: only when allowed),
 * HTTPS_PROXY/NO_PROXY or an explicit proxy (undici's EnvHttpProxyAgent: CONNECT tunnels and
 * NO_PROXY matching), an overall timeout, a size limit, conditional requests and a few redirects.
 */
import { openSync, fstatSync, readSync, closeSync } from 'node:fs';
import { rootCertificates } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { EnvHttpProxyAgent, request, type Dispatcher } from 'undici';
import { ExitCode, ExmitError, inputError } from '../errors.ts';
import { winHttpProxyUrl, type WinHttpProxy } from './winhttp.ts';
import { redactCredentials } from './redact.ts';

/** The feed could not be reached (network, timeout, HTTP error): callers may fall back to the cache or the bundled catalog. */
export class FeedUnreachableError extends ExmitError {
  constructor(message: string, hint?: string) {
    super(ExitCode.error, message, hint);
    this.name = 'FeedUnreachableError';
  }
}

/** How to reach the feed. */
export interface TransportOptions {
  /** Proxy URL (--proxy or config.json); null: HTTPS_PROXY/HTTP_PROXY from the environment. NO_PROXY applies either way. */
  proxy: string | null;
  /** Extra CA certificates (PEM) trusted besides the system ones (--ca FILE). */
  ca: string | null;
  /** Whole-request deadline in milliseconds. */
  timeoutMs: number;
  /** Allow http: and file: URLs (--allow-http). */
  allowInsecure: boolean;
  /** Environment for NO_PROXY and proxies (default: process.env). */
  env?: NodeJS.ProcessEnv | undefined;
  /** Windows: the WinHTTP proxy, used when neither `proxy` nor the environment names one. */
  winHttp?: WinHttpProxy | null | undefined;
}

/** What one fetch returned. */
export type FetchResult =
  | { status: 'not-modified' }
  | { status: 'ok'; body: Buffer; etag: string | null; lastModified: string | null; url: string };

/** Conditional request validators from the cache. */
export interface Validators {
  etag: string | null;
  lastModified: string | null;
}

const MAX_REDIRECTS = 5;

/** Checks a feed URL: no user name or password in it; https always; http and file only with --allow-http. */
export function checkFeedUrl(text: string, allowInsecure: boolean): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw inputError(`"${redactCredentials(text)}" is not a URL`, 'Use https://host/path/catalog.xml.');
  }
  if (url.username !== '' || url.password !== '') {
    throw inputError(`${redactCredentials(text)}: credentials in a feed URL are refused (they would be shown in messages and kept in the cache)`, 'A feed needs no credentials: the signature protects the catalog. Host it where servers can read it without logging in.');
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' || url.protocol === 'file:') {
    if (allowInsecure) return url;
    throw inputError(`${text}: ${url.protocol.slice(0, -1)} URLs are refused without --allow-http`, 'Host the feed on HTTPS; the signature still protects the content, so --allow-http is acceptable on a closed network.');
  }
  throw inputError(`${text}: unsupported URL scheme ${url.protocol}`, 'Use https://host/path/catalog.xml.');
}

/** The signature's URL: the catalog's path with ".sig" appended (query kept). */
export function signatureUrl(catalogUrl: URL): URL {
  const url = new URL(catalogUrl.href);
  url.pathname = `${url.pathname}.sig`;
  return url;
}

/** Whether the environment names a proxy (HTTPS_PROXY or HTTP_PROXY, either case). */
export function environmentHasProxy(env: NodeJS.ProcessEnv): boolean {
  return [env['https_proxy'], env['HTTPS_PROXY'], env['http_proxy'], env['HTTP_PROXY']].some((v) => v !== undefined && v !== '');
}

/**
 * The proxy settings handed to undici: the explicit proxy (--proxy, config.json), else the
 * environment's, else (Windows) the WinHTTP proxy chosen for the target with its bypass list;
 * NO_PROXY from the environment applies to all of them.
 */
export function proxySettings(proxy: string | null, env: NodeJS.ProcessEnv, winHttp: WinHttpProxy | null = null, target: URL | null = null): { httpProxy: string; httpsProxy: string; noProxy: string } {
  const noProxy = env['no_proxy'] ?? env['NO_PROXY'] ?? '';
  if (proxy !== null) return { httpProxy: proxy, httpsProxy: proxy, noProxy };
  if (!environmentHasProxy(env) && winHttp !== null && target !== null) {
    const chosen = winHttpProxyUrl(winHttp, target) ?? '';
    return { httpProxy: chosen, httpsProxy: chosen, noProxy };
  }
  const httpProxy = env['http_proxy'] ?? env['HTTP_PROXY'] ?? '';
  const httpsProxy = env['https_proxy'] ?? env['HTTPS_PROXY'] ?? httpProxy;
  return { httpProxy, httpsProxy, noProxy };
}

/** Warnings about environment variables that bear on the feed's TLS (exmit verifies certificates whatever they say). */
export function tlsEnvironmentWarnings(env: NodeJS.ProcessEnv): string[] {
  const warnings: string[] = [];
  if (env['NODE_TLS_REJECT_UNAUTHORIZED'] === '0') warnings.push('NODE_TLS_REJECT_UNAUTHORIZED=0 is set: ignored, exmit verifies the feed\'s certificate (use --ca FILE for a private CA)');
  const extra = env['NODE_EXTRA_CA_CERTS'];
  if (extra !== undefined && extra !== '') warnings.push(`NODE_EXTRA_CA_CERTS=${extra} is set: the certificates in it are trusted for the feed as well as the system's`);
  return warnings;
}

function makeDispatcher(options: TransportOptions, target: URL): Dispatcher {
  const env = options.env ?? process.env;
  const settings = proxySettings(options.proxy, env, options.winHttp ?? null, target);
  // Verification is set explicitly, so NODE_TLS_REJECT_UNAUTHORIZED=0 cannot turn it off: for direct
  // connections (connect), inside the proxy tunnel (requestTls) and to an https proxy (proxyTls).
  const tls = { rejectUnauthorized: true, ...(options.ca === null ? {} : { ca: [...rootCertificates, options.ca] }) };
  // Empty strings, never undefined: undici reads process.env itself when a proxy option is absent.
  return new EnvHttpProxyAgent({
    connect: { ...tls, timeout: options.timeoutMs },
    requestTls: tls,
    proxyTls: tls,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.timeoutMs,
    httpProxy: settings.httpProxy,
    httpsProxy: settings.httpsProxy,
    noProxy: settings.noProxy,
  });
}

/**
 * Fetches one URL with the validators (null: unconditional) and a size limit. Network failures,
 * timeouts and HTTP errors are FeedUnreachableError; an oversize body is an inputError.
 */
export async function fetchFeedFile(urlText: string, options: TransportOptions, maxBytes: number, validators: Validators | null): Promise<FetchResult> {
  let url = checkFeedUrl(urlText, options.allowInsecure);
  if (url.protocol === 'file:') return readFileUrl(url, maxBytes);
  const dispatcher = makeDispatcher(options, url);
  const controller = new AbortController();
  const seconds = Math.round(options.timeoutMs / 100) / 10;
  const timer = setTimeout(() => controller.abort(new FeedUnreachableError(`${urlText}: no complete answer within ${seconds} s`, 'Check the URL, the proxy (HTTPS_PROXY/--proxy) and the firewall; --timeout SECONDS waits longer.')), options.timeoutMs);
  try {
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': 'exmit', accept: 'application/xml, text/xml, application/json, */*' };
      if (validators?.etag) headers['if-none-match'] = validators.etag;
      if (validators?.lastModified) headers['if-modified-since'] = validators.lastModified;
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, { method: 'GET', headers, dispatcher, signal: controller.signal });
      } catch (error) {
        throw unreachable(urlText, error, controller);
      }
      const status = response.statusCode;
      if ([301, 302, 303, 307, 308].includes(status) && typeof response.headers['location'] === 'string') {
        await response.body.dump().catch(() => {});
        if (hop >= MAX_REDIRECTS) throw new FeedUnreachableError(`${urlText}: more than ${MAX_REDIRECTS} redirects`, 'Point --url at the final address.');
        const next = new URL(response.headers['location'], url);
        // Never from https to http, not even with --allow-http; from http, to http or https.
        const allowed = url.protocol === 'https:' ? next.protocol === 'https:' : next.protocol === 'https:' || (options.allowInsecure && next.protocol === 'http:');
        if (!allowed) throw inputError(`${urlText}: redirected to ${redactCredentials(next.href)}, which is not HTTPS: refused`, 'Point --url at the HTTPS address.');
        if (next.username !== '' || next.password !== '') throw inputError(`${urlText}: redirected to ${redactCredentials(next.href)}: credentials in a feed URL are refused`);
        url = next;
        continue;
      }
      if (status === 304) {
        await response.body.dump().catch(() => {});
        if (validators === null) throw new FeedUnreachableError(`${urlText}: answered 304 Not Modified to a request that was not conditional`);
        return { status: 'not-modified' };
      }
      if (status < 200 || status > 299) {
        await response.body.dump().catch(() => {});
        throw new FeedUnreachableError(`${urlText}: the server answered HTTP ${status}`, status === 404 ? 'Check the URL (the signature is the catalog URL with ".sig" appended).' : 'Try again later, or check the feed\'s web server.');
      }
      const length = Number(response.headers['content-length']);
      if (Number.isFinite(length) && length > maxBytes) {
        response.body.destroy();
        throw tooLarge(urlText, maxBytes);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      try {
        for await (const chunk of response.body) {
          const buffer = chunk as Buffer;
          total += buffer.length;
          if (total > maxBytes) {
            response.body.destroy();
            throw tooLarge(urlText, maxBytes);
          }
          chunks.push(buffer);
        }
      } catch (error) {
        if (error instanceof ExmitError) throw error;
        throw unreachable(urlText, error, controller);
      }
      return { status: 'ok', body: Buffer.concat(chunks), etag: headerValue(response.headers['etag']), lastModified: headerValue(response.headers['last-modified']), url: url.href };
    }
  } finally {
    clearTimeout(timer);
    await dispatcher.destroy().catch(() => {});
  }
}

function headerValue(value: string | string[] | undefined): string | null {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return null;
}

function tooLarge(url: string, maxBytes: number): ExmitError {
  return inputError(`${url}: the response is larger than ${maxBytes} bytes: refused`, 'A catalog is far smaller; check the URL.');
}

function unreachable(url: string, error: unknown, controller: AbortController): ExmitError {
  if (controller.signal.aborted && controller.signal.reason instanceof ExmitError) return controller.signal.reason;
  const cause = redactCredentials(error instanceof Error ? (error.cause instanceof Error ? `${error.message}: ${error.cause.message}` : error.message) : String(error));
  return new FeedUnreachableError(`${url}: cannot be reached (${cause})`, 'Check the URL, the proxy (HTTPS_PROXY/NO_PROXY/--proxy), the firewall and, for a private CA, --ca FILE.');
}

function readFileUrl(url: URL, maxBytes: number): FetchResult {
  const file = fileURLToPath(url);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (error) {
    throw new FeedUnreachableError(`${url.href}: cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'Check the path.');
  }
  try {
    const size = fstatSync(fd).size;
    if (size > maxBytes) throw tooLarge(url.href, maxBytes);
    const buffer = Buffer.alloc(size);
    let read = 0;
    while (read < size) {
      const n = readSync(fd, buffer, read, size - read, read);
      if (n === 0) break;
      read += n;
    }
    return { status: 'ok', body: buffer.subarray(0, read), etag: null, lastModified: null, url: url.href };
  } finally {
    closeSync(fd);
  }
}
