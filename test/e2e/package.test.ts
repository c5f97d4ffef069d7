/**
 * exmit.exe (scripts/package.ts): the build is reproducible, and under Wine the executable prints
 * what the Node CLI prints. Wine 8 starts Node 22's Windows binary but not Node 24's, so this is the
 * package script's `wine` target: the same bundle and assets as the release, on Node 22. Wine's
 * stdout into a pipe fails (EBADF), so the executable writes into files. Without Wine this fails:
 * install Debian's wine64 (.ci/run does).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildExecutable, sha256Hex, WINE_NODE } from '../../scripts/package.ts';
import { makeCatalog } from '../unit/trust-fixtures.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const WINE = '/usr/lib/wine/wine64';
const WINESERVER = '/usr/lib/wine/wineserver';
const cache = path.join(root, 'build', 'cache');
// Made once and kept (git-ignored): a new Wine prefix takes half a minute.
const prefix = path.join(root, 'build', 'wine-prefix');
const work = mkdtempSync(path.join(os.tmpdir(), 'exmit-package-'));
const exe = path.join(work, 'a', 'wine', 'exmit.exe');
const standIn = path.join(work, 'stand-in', 'powershell.exe');
const standInLog = path.join(work, 'stand-in.log');
const wineEnv = {
  PATH: process.env['PATH'] ?? '',
  HOME: process.env['HOME'] ?? work,
  WINEPREFIX: prefix,
  WINEDEBUG: '-all',
  // No Mono or Gecko installers when the prefix is made.
  WINEDLLOVERRIDES: 'mscoree,mshtml=',
  // Wine says it is Windows 7, which Node refuses without this.
  NODE_SKIP_PLATFORM_CHECK: '1',
  NO_COLOR: '1',
  EXMIT_STAND_IN_LOG: standInLog,
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The Windows path Wine gives a Linux path (drive Z: is /). */
function windowsPath(file: string): string {
  return `Z:${file.replaceAll('/', '\\')}`;
}

/** The Linux path of a path on Wine's drive C:. */
function driveC(file: string): string {
  return path.join(prefix, 'drive_c', ...file.replace(/^C:\\/i, '').split('\\'));
}

let runs = 0;
/** Runs exmit.exe under Wine with stdout and stderr going into files. */
function runExe(args: string[], cwd = work): Run {
  runs += 1;
  const out = path.join(work, `out-${runs}.txt`);
  const err = path.join(work, `err-${runs}.txt`);
  const outFd = openSync(out, 'w');
  const errFd = openSync(err, 'w');
  try {
    const result = spawnSync(WINE, [exe, ...args], { cwd, env: wineEnv, stdio: ['ignore', outFd, errFd], timeout: 300_000 });
    return { code: result.status ?? -1, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
  }
}

/** Runs the Node CLI (bin/exmit.js). */
function runNode(args: string[], cwd = work): Run {
  const result = spawnSync(process.execPath, [path.join(root, 'bin', 'exmit.js'), ...args], { cwd, env: { PATH: process.env['PATH'] ?? '', HOME: work, NO_COLOR: '1' }, encoding: 'utf8', timeout: 180_000 });
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

function packageInto(out: string): void {
  const result = spawnSync(process.execPath, [path.join(root, 'scripts', 'package.ts'), '--target', 'wine', '--out', out, '--cache', cache], { cwd: root, encoding: 'utf8', timeout: 900_000 });
  assert.equal(result.status, 0, `package --target wine failed:\n${result.stdout}\n${result.stderr}`);
}

before(async () => {
  assert.ok(existsSync(WINE), `${WINE} is missing: install Debian's wine64 (apt-get install wine64), as .ci/run does`);
  if (!existsSync(path.join(root, 'dist', 'cli.js'))) {
    spawnSync(path.join(root, 'node_modules', '.bin', 'tsc'), ['-p', root], { stdio: 'ignore' });
  }
  packageInto(path.join(work, 'a'));
  packageInto(path.join(work, 'b'));
  const standInWork = path.join(work, 'stand-in');
  await buildExecutable({ main: path.join(root, 'test', 'e2e', 'package-powershell-stand-in.cjs'), assets: {}, node: WINE_NODE, out: standIn, cache, work: standInWork });
});

after(() => {
  // Wine's server lingers a few seconds after the last process; wait for it rather than leave it behind.
  if (existsSync(WINESERVER)) spawnSync(WINESERVER, ['-w'], { env: wineEnv, timeout: 60_000 });
  rmSync(work, { recursive: true, force: true });
});

test('the package script twice gives byte-identical executables, without the signature the injection broke', () => {
  const a = readFileSync(exe);
  const b = readFileSync(path.join(work, 'b', 'wine', 'exmit.exe'));
  assert.ok(a.length > 50_000_000, `exmit.exe is only ${a.length} bytes`);
  assert.equal(sha256Hex(a), sha256Hex(b));
  const optional = a.readUInt32LE(0x3c) + 24;
  assert.equal(a.readUInt32LE(optional + 112 + 4 * 8 + 4), 0, 'the security directory (Authenticode signature) is still there');
});

test('--version under Wine: the same version as the Node CLI, and which Node it carries', () => {
  const run = runExe(['--version']);
  assert.equal(run.code, 0, run.stderr);
  const node = runNode(['--version']);
  const [first, second] = run.stdout.split(/\r?\n/);
  assert.equal(`${first}\n`, node.stdout);
  assert.equal(second, `Node.js v${WINE_NODE.version} win32-x64 (single executable)`);
});

test('catalog list --json under Wine prints what the Node CLI prints; the engine came from the exe, through a temporary file removed after the run', () => {
  rmSync(standInLog, { force: true });
  const run = runExe(['catalog', 'list', '--json', '--state-dir', windowsPath(path.join(work, 'state-exe')), '--powershell', windowsPath(standIn)]);
  const node = runNode(['catalog', 'list', '--json', '--state-dir', path.join(work, 'state-node')]);
  assert.equal(node.code, 0, node.stderr);
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.deepEqual(JSON.parse(run.stdout), JSON.parse(node.stdout));
  assert.ok((JSON.parse(run.stdout) as { mitigations: unknown[] }).mitigations.length >= 5);

  const records = readFileSync(standInLog, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { script?: string; sha256?: string; op?: string });
  const started = records.find((record) => record.script !== undefined);
  assert.ok(started?.script !== undefined, `the stand-in PowerShell was not started: ${JSON.stringify(records)}`);
  assert.equal(started.sha256, sha256Hex(readFileSync(path.join(root, 'engine', 'exmit-engine.ps1'))), 'the script given to PowerShell is not the built engine');
  assert.match(started.script, /^C:\\users\\[^\\]+\\Temp\\exmit-[^\\]+\\exmit-engine\.ps1$/i);
  assert.equal(existsSync(driveC(started.script)), false, `${started.script} was left behind`);
  assert.deepEqual(records.map((record) => record.op).filter((op) => op !== undefined), ['whoami', 'security', 'exit']);
});

test('catalog verify of a signed catalog under Wine prints what the Node CLI prints', () => {
  const site = path.join(work, 'site');
  mkdirSync(site, { recursive: true });
  writeFileSync(path.join(site, 'catalog.xml'), makeCatalog({ serial: 2026112901 }));
  const keygen = runNode(['catalog', 'keygen', '--out', site, '--name', 'contoso']);
  assert.equal(keygen.code, 0, keygen.stderr);
  const sign = runNode(['catalog', 'sign', 'catalog.xml', '--key', 'contoso.key'], site);
  assert.equal(sign.code, 0, sign.stderr);

  const args = ['catalog', 'verify', 'catalog.xml', '--trust', 'contoso.pub'];
  const node = runNode([...args, '--state-dir', path.join(work, 'state-node')], site);
  const run = runExe([...args, '--state-dir', windowsPath(path.join(work, 'state-exe')), '--powershell', windowsPath(standIn)], site);
  assert.equal(node.code, 0, node.stderr);
  assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
  assert.match(node.stdout, /^valid: /);
  // The same text, the file named the Windows way.
  assert.equal(run.stdout.replaceAll('\r\n', '\n'), node.stdout.replaceAll(path.join(site, 'catalog.xml'), windowsPath(path.join(site, 'catalog.xml'))));

  const json = runExe([...args, '--json', '--state-dir', windowsPath(path.join(work, 'state-exe')), '--powershell', windowsPath(standIn)], site);
  const nodeJson = JSON.parse(runNode([...args, '--json', '--state-dir', path.join(work, 'state-node')], site).stdout) as Record<string, unknown>;
  assert.equal(json.code, 0, `${json.stdout}\n${json.stderr}`);
  assert.deepEqual(JSON.parse(json.stdout), { ...nodeJson, file: windowsPath(path.join(site, 'catalog.xml')), signature: windowsPath(path.join(site, 'catalog.xml.sig')) });
  assert.equal((nodeJson as { valid: boolean }).valid, true);
});
