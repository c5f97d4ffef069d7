// Errors a person can act on (issue 9, item 5): each case through the built CLI, checking the exit
// code, that the output names the cause once, and that nothing hangs: every run has a timeout, and
// the terminal cases run under a pseudo-terminal (`script`).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ROOT, image, parseJson, runCli, hasStackTrace, type CliRun } from '../support/cli.ts';

const EXAMPLE = image('examples/e19-cu12-oct22su');
const BIN = path.join(ROOT, 'bin', 'exmit.js');
const HANG = JSON.stringify({ step: 0, when: 'before', kind: 'hang' });

/** How many times `pattern` occurs in `text`. */
function count(text: string, pattern: RegExp): number {
  return (text.match(new RegExp(pattern.source, pattern.flags.includes('g') ? pattern.flags : pattern.flags + 'g')) ?? []).length;
}

/** One error line naming the cause once, a hint line under it, nothing else on stderr, no stack trace. */
function oneError(run: CliRun, code: number, cause: RegExp): void {
  assert.equal(run.code, code, run.stderr);
  assert.equal(hasStackTrace(run.stderr), false, run.stderr);
  const lines = run.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('warning: NODE_EXTRA_CA_CERTS'));
  assert.equal(lines.length, 2, `one error line and one hint:\n${run.stderr}`);
  assert.match(lines[0] ?? '', /^exmit: /);
  assert.match(lines[1] ?? '', /^ {2}\S/);
  assert.equal(count(run.stderr, cause), 1, `the cause once:\n${run.stderr}`);
}

/** Runs the CLI with a short timeout: a hang fails the test instead of holding it. */
function quick(args: string[], env: Record<string, string> = {}): CliRun {
  const result = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, env: { ...process.env, NO_COLOR: '1', ...env }, input: '', encoding: 'utf8', timeout: 60_000 });
  assert.equal(result.error, undefined, `exmit ${args.join(' ')} did not end within 60 s`);
  return { code: result.status ?? -1, stdout: result.stdout, stderr: result.stderr };
}

/** Every process under `pid`, from /proc. */
function descendants(pid: number): number[] {
  const out: number[] = [];
  let children: string[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((x) => x !== '');
  } catch {
    return out;
  }
  for (const c of children.map(Number)) out.push(c, ...descendants(c));
  return out;
}

/** Whether a process still runs (a zombie does not). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** Waits until `ready` is true, or fails after `ms`. */
async function until(ready: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves with the exit code (or signal) of a child, or with 'hung' after `ms` (the child is then killed). */
function ended(child: ChildProcess, ms: number): Promise<number | string> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('hung');
    }, ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal ?? -1);
    });
  });
}

function copyImage(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'exmit-errors-'));
  cpSync(EXAMPLE, path.join(dir, 'image'), { recursive: true });
  return dir;
}

/** The engine's processes under `pid`: PowerShell, and its real process when pwsh is a launcher (a dotnet tool). */
function enginesOf(pid: number): number[] {
  return descendants(pid).filter((p) => /exmit-engine\.ps1/.test(commandOf(p)));
}

describe('signals end a run and its engine at once', () => {
  for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130]] as const) {
    it(`${signal} during an apply whose engine hangs mid-run: exit ${code} within seconds, one line, no PowerShell left`, async () => {
      const dir = copyImage();
      const child = spawn(process.execPath, [BIN, 'apply', '--needed', '--yes', '--verbose', '--target', `image:${path.join(dir, 'image')}`, '--state-dir', path.join(dir, 'state')], {
        env: { ...process.env, NO_COLOR: '1', EXMIT_TEST_HOOKS: '1', EXMIT_TEST_FAULT: HANG },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
      try {
        // --verbose shows the step the engine hangs in.
        await until(() => /step 1\/1/.test(stderr), 120_000, 'the engine to reach its first step');
        const engine = enginesOf(child.pid ?? 0);
        assert.ok(engine.length > 0 && engine.every(running), 'the engine runs');
        const before = stderr.length;
        child.kill(signal);
        assert.equal(await ended(child, 5_000), code);
        const after = stderr.slice(before);
        assert.equal(count(after, new RegExp(`stopped by ${signal}`)), 1, after);
        assert.match(after, /exmit rollback --all/);
        await until(() => !engine.some(running), 2_000, 'every engine process to be gone');
      } finally {
        child.kill('SIGKILL');
      }
    });
  }

  it('SIGTERM during an audit, right after the engine starts: exit 143, "Nothing was changed", no PowerShell left', async () => {
    const child = spawn(process.execPath, [BIN, 'audit', '--json', '--target', `image:${EXAMPLE}`], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    try {
      let engine: number[] = [];
      await until(() => (engine = enginesOf(child.pid ?? 0)).length > 0, 30_000, 'the engine to start');
      await new Promise((r) => setTimeout(r, 300));
      engine = enginesOf(child.pid ?? 0);
      child.kill('SIGTERM');
      assert.equal(await ended(child, 5_000), 143);
      const doc = JSON.parse(stdout) as { error: { code: number; message: string; hint: string } };
      assert.equal(doc.error.code, 143);
      assert.match(doc.error.message, /^stopped by SIGTERM/);
      assert.match(doc.error.hint, /Nothing was changed/);
      await until(() => !enginesOf(child.pid ?? 0).some(running) && !engine.some(running), 2_000, 'every engine process to be gone');
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('Ctrl-C on a terminal (pseudo-terminal) ends a hung apply: exit 130, the engine gone', async () => {
    const dir = copyImage();
    const cmd = `stty cols 100 rows 40; EXMIT_TEST_HOOKS=1 EXMIT_TEST_FAULT='${HANG}' "${process.execPath}" "${BIN}" apply --needed --yes --verbose --target "image:${path.join(dir, 'image')}" --state-dir "${path.join(dir, 'state')}"`;
    const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '1' }, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    try {
      await until(() => /step 1\/1/.test(out), 120_000, 'the engine to reach its first step');
      const engine = enginesOf(child.pid ?? 0);
      assert.ok(engine.length > 0, 'the engine runs under the terminal');
      child.stdin?.write('\u0003');
      assert.equal(await ended(child, 8_000), 130, out.slice(-500));
      assert.equal(count(out, /stopped by SIGINT/), 1, out.slice(-500));
      await until(() => !engine.some(running), 2_000, 'every engine process to be gone');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('a terminal that reports 0 columns', () => {
  it('an audit ends (exit 3) and writes no spinner frames', () => {
    const cmd = `stty cols 0 rows 0; "${process.execPath}" "${BIN}" audit --target "image:${EXAMPLE}"`;
    const run = spawnSync('script', ['-qfec', cmd, '/dev/null'], { env: { ...process.env, NO_COLOR: '1' }, encoding: 'utf8', timeout: 120_000 });
    assert.equal(run.error, undefined, 'the run did not end within 120 s');
    assert.equal(run.status, 3, run.stdout.slice(-500));
    assert.match(run.stdout, /EXPOSED/);
    assert.ok(run.stdout.length < 50_000, `${run.stdout.length} bytes: a spinner loop`);
    assert.doesNotMatch(run.stdout, /Reading the server/, 'no spinner');
  });
});

describe('one line, a hint, the documented exit code', () => {
  for (const value of ['abc', '0', '-5']) {
    it(`EXMIT_TIMEOUT_SECONDS=${value}: exit 1 before any engine starts`, () => {
      oneError(quick(['audit', '--target', `image:${EXAMPLE}`], { EXMIT_TIMEOUT_SECONDS: value }), 1, /EXMIT_TIMEOUT_SECONDS="/);
    });
  }

  it('--target image:examples (a folder of images) names the folder, says what an image is, and suggests the image inside', () => {
    const run = quick(['audit', '--target', 'image:examples']);
    oneError(run, 1, /is a folder of server images/);
    assert.match(run.stderr, /examples is a folder of server images, not one image/);
    assert.match(run.stderr, /A server image is one server's folder with registry\.xml/);
    assert.match(run.stderr, /--target image:examples\/e19-cu12-oct22su/);
    assert.doesNotMatch(run.stderr, /registry\.xml: not found/);
  });

  it('an empty folder is not a server image, and says what one is', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'exmit-empty-'));
    const run = quick(['detect', '--target', `image:${dir}`]);
    oneError(run, 1, /is not a server image/);
    assert.match(run.stderr, /has no registry\.xml/);
  });

  it('a hostile image\'s DTD is refused in exmit\'s words, without .NET\'s advice to enable DTD processing', () => {
    const run = quick(['audit', '--target', `image:${image('bad/hostile-entity')}`]);
    oneError(run, 1, /DTD/);
    assert.match(run.stderr, /registry\.xml: .*DTD/);
    assert.doesNotMatch(run.stderr, /DtdProcessing|enable DTD|XmlReader/);
  });

  it('catalog verify FILE without a signature does not suggest --allow-unsigned, which it does not take', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'exmit-verify-'));
    const file = path.join(dir, 'catalog.xml');
    writeFileSync(file, readFileSync(path.join(ROOT, 'mitigations', 'catalog.xml')));
    const run = quick(['catalog', 'verify', file, '--state-dir', path.join(dir, 'state')]);
    oneError(run, 1, /no signature/);
    assert.doesNotMatch(run.stderr, /allow-unsigned/);
    assert.match(run.stderr, /exmit catalog sign FILE --key KEY/);
    // audit takes --allow-unsigned, so its hint names it
    const audit = quick(['audit', '--catalog', file, '--target', `image:${EXAMPLE}`, '--state-dir', path.join(dir, 'state')]);
    oneError(audit, 1, /no signature/);
    assert.match(audit.stderr, /--allow-unsigned/);
  });

  for (const [args, option] of [
    [['detect', '--catalog', 'x.xml', '--target', `image:${EXAMPLE}`], '--catalog'],
    [['detect', '--state-dir', '/tmp', '--target', `image:${EXAMPLE}`], '--state-dir'],
    [['catalog', 'keygen', '--out', '/tmp/exmit-never', '--catalog', 'x.xml'], '--catalog'],
    [['catalog', 'sign', 'x.xml', '--key', 'k', '--state-dir', '/tmp'], '--state-dir'],
    [['catalog', 'verify', 'x.xml', '--catalog', 'y.xml'], '--catalog'],
    [['collect', '--out', '/tmp/exmit-never', '--target', 'image:x'], '--target'],
  ] as const) {
    it(`${args.slice(0, args[0] === 'catalog' ? 2 : 1).join(' ')} does not take ${option}: exit 2, and its help does not show it`, () => {
      const name = args.slice(0, args[0] === 'catalog' ? 2 : 1);
      const run = quick([...args]);
      oneError(run, 2, new RegExp(`unknown option '${option}'`));
      assert.match(run.stderr, new RegExp(`Run "exmit ${name.join(' ')} --help"`));
      assert.equal(existsSync('/tmp/exmit-never'), false);
      const help = quick([...name, '--help']);
      assert.equal(help.code, 0);
      assert.doesNotMatch(help.stdout + help.stderr, new RegExp(`${option} `));
    });
  }

  it('catalog show with a mistyped id suggests the nearest id, exit 2', () => {
    const run = quick(['catalog', 'show', 'proxynotshel-autodiscover']);
    oneError(run, 2, /proxynotshel-autodiscover/);
    assert.match(run.stderr, /Did you mean "proxynotshell-autodiscover"\?/);
  });

  it('an explicit --catalog URL that cannot be fetched is exit 1 naming the URL, not a silent fallback', () => {
    const run = quick(['catalog', 'list', '--catalog', 'https://127.0.0.1:1/catalog.xml', '--state-dir', mkdtempSync(path.join(tmpdir(), 'exmit-state-'))]);
    oneError(run, 1, /127\.0\.0\.1:1\/catalog\.xml/);
    assert.match(run.stderr, /^exmit: --catalog https:\/\/127\.0\.0\.1:1\/catalog\.xml: cannot be reached/m);
    assert.match(run.stderr, /leave out --catalog to use the newest verified catalog \(the bundled one/);
    assert.equal(run.stdout, '');
    const json = quick(['audit', '--json', '--catalog', 'https://127.0.0.1:1/catalog.xml', '--target', `image:${EXAMPLE}`]);
    assert.equal(json.code, 1);
    assert.match(parseJson<{ error: { message: string } }>(json).error.message, /cannot be reached/);
  });

  it('catalog list and show --json carry the catalog\'s warnings as a list', () => {
    const state = mkdtempSync(path.join(tmpdir(), 'exmit-state-'));
    for (const args of [['catalog', 'list'], ['catalog', 'show', 'owassrf']]) {
      const run = quick([...args, '--json', '--state-dir', state]);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(Array.isArray(parseJson<{ warnings: unknown }>(run).warnings), args.join(' '));
    }
  });

  it('--verbose says which PowerShell and which catalog file the run used', () => {
    const run = quick(['audit', '--verbose', '--target', `image:${EXAMPLE}`]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /^PowerShell: \S*pwsh\S*, engine script \S+exmit-engine\.ps1$/m);
    assert.match(run.stderr, new RegExp(`^catalog: bundled ${path.join(ROOT, 'mitigations', 'catalog.xml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(serial \\d+`, 'm'));
    const list = quick(['catalog', 'list', '--verbose']);
    assert.match(list.stderr, /^catalog: bundled /m);
  });

  it('a timeout names what was slow: PowerShell\'s start, or the request', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'exmit-slow-'));
    const never = path.join(dir, 'never');
    const pids = path.join(dir, 'pids');
    writeFileSync(never, `#!/usr/bin/env bash\nsleep 600 &\necho $! > ${pids}\nwait\n`);
    chmodSync(never, 0o755);
    const start = quick(['detect', '--target', `image:${EXAMPLE}`, '--powershell', never], { EXMIT_TIMEOUT_SECONDS: '2' });
    oneError(start, 1, /did not answer/);
    assert.match(start.stderr, /its start was what was slow/);
    assert.doesNotMatch(start.stderr, /WMI/);
    // What the stopped PowerShell started is stopped too (its process group).
    const sleeper = Number(readFileSync(pids, 'utf8').trim());
    assert.ok(sleeper > 0);
    assert.equal(running(sleeper), false, 'the stopped PowerShell\'s child is gone');
    // An engine that answers preflight, then hangs on gather: reading the image was slow.
    const slow = path.join(dir, 'slow');
    const preflight = JSON.stringify({ psVersion: '7.6.9', edition: 'Core', platform: 'Unix', is64BitProcess: true, elevated: null, languageMode: 'FullLanguage', executionPolicy: 'Unrestricted' });
    writeFileSync(slow, `#!/usr/bin/env bash\nread line\nid=$(echo "$line" | sed 's/.*"id":\\([0-9]*\\).*/\\1/')\necho '{"id":'$id',"ok":true,"result":${preflight}}'\nsleep 600\n`);
    chmodSync(slow, 0o755);
    const request = quick(['detect', '--target', `image:${EXAMPLE}`, '--powershell', slow], { EXMIT_TIMEOUT_SECONDS: '2' });
    oneError(request, 1, /did not answer the gather request/);
    assert.match(request.stderr, /Reading the image's files was slow/);
    assert.doesNotMatch(request.stderr, /its start/);
  });

  it('a mistyped command with --json reports the unknown command (and --json before a command works)', () => {
    const run = quick(['--json', 'aply']);
    assert.equal(run.code, 2);
    const doc = parseJson<{ error: { code: number; message: string; hint: string } }>(run);
    assert.equal(doc.error.code, 2);
    assert.equal(doc.error.message, "unknown command 'aply'");
    assert.match(doc.error.hint, /Did you mean apply\?/);
    const text = runCli(['aply']);
    oneError(text, 2, /aply/);
    const before = quick(['--json', 'detect', '--target', `image:${EXAMPLE}`]);
    assert.equal(before.code, 0, before.stderr);
    assert.equal(parseJson<{ build: string }>(before).build, '15.2.1118.15');
  });
});
