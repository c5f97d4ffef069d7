/** Shared fixtures of the trust tests: small catalogs, keys, a loopback HTTPS feed with its own certificate, an HTTP CONNECT proxy. */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { generateKeyPair, type TrustedKey } from '../../src/trust/keys.ts';
import { signCatalogBytes } from '../../src/trust/signature.ts';

/** A small valid catalog; `action` replaces its one action element; published is the serial's date (YYYYMMDDNN) unless given. */
export function makeCatalog(options: { serial?: number; published?: string; expires?: string; requires?: string; action?: string; title?: string } = {}): Buffer {
  const serial = String(options.serial ?? 2026070101);
  const published = options.published ?? `${serial.slice(0, 4)}-${serial.slice(4, 6)}-${serial.slice(6, 8)}`;
  const xml = `<?xml version="1.0" encoding="utf-8"?>
<catalog xmlns="urn:exmit:catalog:1" serial="${serial}" published="${published}" expires="${options.expires ?? '2099-12-31'}" requires="${options.requires ?? '>=0.1.0'}">
  <mitigation id="svc-test" severity="important">
    <title>${options.title ?? 'Test'}</title>
    <cve>CVE-2099-0001</cve>
    <description>A test.</description>
    <reference>https://example.com/</reference>
    <appliesTo products="2019" roles="Mailbox"/>
    <fixedIn product="2019" allFixed="true"/>
    <actions>
      ${options.action ?? '<service name="MSExchangeUM"/>'}
    </actions>
  </mitigation>
</catalog>
`;
  return Buffer.from(xml, 'utf8');
}

/** A key pair for tests, as a trusted key plus a signer. */
export interface TestKey {
  trusted: TrustedKey;
  privatePem: string;
  sign(bytes: Buffer): string;
}

/** Makes a signing key. */
export function makeKey(name = 'test'): TestKey {
  const pair = generateKeyPair();
  const privateKey = createPrivateKey(pair.privatePem);
  const publicKey = createPublicKey(privateKey);
  return {
    trusted: { keyId: pair.keyId, publicKey: pair.publicKey, name, retired: false, origin: `test key ${name}` },
    privatePem: pair.privatePem,
    sign: (bytes) => signCatalogBytes(bytes, privateKey, publicKey),
  };
}

/** A fresh temporary folder (0700, as mkdtemp makes it). */
export function tempDir(prefix = 'exmit-trust-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A self-signed certificate for 127.0.0.1 made with openssl. */
export function makeCertificate(dir: string): { cert: string; key: string; certFile: string } {
  const keyFile = path.join(dir, 'feed-key.pem');
  const certFile = path.join(dir, 'feed-cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8'), certFile };
}

/** What one route of the feed answers. */
export interface Route {
  status?: number;
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** Never answer (a slow server). */
  hang?: boolean;
}

/** A loopback HTTPS feed whose routes tests change at will; it records each request's path and headers. */
export interface Feed {
  url: string;
  port: number;
  routes: Map<string, Route>;
  requests: { path: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** Starts the feed on 127.0.0.1 with the certificate. */
export async function startFeed(tls: { cert: string; key: string }): Promise<Feed> {
  const routes = new Map<string, Route>();
  const requests: Feed['requests'] = [];
  const hanging = new Set<http.ServerResponse>();
  const server = https.createServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    requests.push({ path: req.url ?? '', headers: req.headers });
    const route = routes.get(req.url ?? '');
    if (route === undefined) {
      res.writeHead(404).end('not found');
      return;
    }
    if (route.hang === true) {
      hanging.add(res);
      return;
    }
    const etag = route.headers?.['etag'];
    if (etag !== undefined && req.headers['if-none-match'] === etag) {
      res.writeHead(304, { etag }).end();
      return;
    }
    res.writeHead(route.status ?? 200, { 'content-type': 'application/xml', ...route.headers }).end(route.body ?? '');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `https://127.0.0.1:${port}`,
    port,
    routes,
    requests,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A loopback HTTP proxy that only tunnels (CONNECT), recording each target. */
export interface Proxy {
  url: string;
  connects: string[];
  close(): Promise<void>;
}

/** Starts the proxy on 127.0.0.1. */
export async function startProxy(): Promise<Proxy> {
  const connects: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => {
    res.writeHead(405).end('CONNECT only');
  });
  server.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    const target = req.url ?? '';
    connects.push(target);
    const [host, port] = target.split(':');
    if (host !== '127.0.0.1') {
      client.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    const upstream = net.connect(Number(port), host, () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    sockets.add(client);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    connects,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes a config.json into the state folder, owner-only. */
export function writeConfig(stateDir: string, config: unknown): void {
  writeFileSync(path.join(stateDir, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
}

/** The config.json entry for a key. */
export function configKey(key: TestKey, retired = false): Record<string, unknown> {
  return { keyId: key.trusted.keyId, publicKey: key.trusted.publicKey, name: key.trusted.name, retired };
}
