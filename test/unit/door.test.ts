// The door to PowerShell, against fake engines that misbehave in each way the protocol allows for
// (hang, crash, garbage, exit without answering, a bad result, progress events, every error kind),
// and against the real engine for the normal path: it answers, and it exits 0 by itself.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startEngine, type EngineSession } from '../../src/powershell/door.ts';
import { timeoutFromEnv } from '../../src/powershell/timeout.ts';
import { ERROR_KINDS, errorKindOf } from '../../src/powershell/errors.ts';
import { ExmitError, type ErrorKind } from '../../src/errors.ts';
import type { EngineEvent } from '../../src/powershell/protocol.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const example = { kind: 'image' as const, path: path.join(root, 'examples', 'e19-cu12-oct22su') };
const dir = mkdtempSync(path.join(tmpdir(), 'exmit-door-'));
let fakes = 0;

/** A fake engine: a Node script whose `onRequest(req)` body answers each request line. */
function fake(onRequest: string, prelude = ''): string {
  const file = path.join(dir, `fake-${++fakes}`);
  writeFileSync(file, [
    `#!${process.execPath}`,
    "const send = (o) => process.stdout.write(JSON.stringify(o) + '\\n');",
    // A fake a failed test leaves behind must not keep the test run alive.
    'setTimeout(() => process.exit(99), 60000);',
    prelude,
    "require('node:readline').createInterface({ input: process.stdin }).on('line', (line) => { const req = JSON.parse(line); " + onRequest + ' });',
  ].join('\n'));
  chmodSync(file, 0o755);
  return file;
}

/** Answers every request with an empty result and exits 0 after exit (a well-behaved engine). */
const answerExit = "if (req.op === 'exit') { send({ id: req.id, ok: true, result: {} }); process.exit(0); }";

const preflight = { psVersion: '7.6.9', edition: 'Core', platform: 'Unix', is64BitProcess: true, elevated: null, languageMode: 'FullLanguage', executionPolicy: 'Bypass' };

async function rejectsWith(promise: Promise<unknown>, check: (e: ExmitError) => void): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof ExmitError, `not an ExmitError: ${String(e)}`);
    check(e);
    return true;
  });
}

describe('the door with the real engine', () => {
  const engine: EngineSession = startEngine({});
  after(async () => engine.close());

  it('answers preflight, gather and readFiles with checked results', async () => {
    const pre = await engine.call('preflight', { target: example });
    assert.equal(pre.languageMode, 'FullLanguage');
    const facts = await engine.call('gather', { target: example, services: ['MSExchangeMitigation'] });
    assert.equal(facts.target.computerName, 'EX19A');
    const apphost = facts.applicationHost;
    assert.ok(apphost !== null && apphost.data !== null && apphost.format !== null);
    assert.match(apphost.sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.match(apphost.text ?? '', /<configuration>/);
    const files = await engine.call('readFiles', { target: example, paths: ['C:\\inetpub\\wwwroot\\web.config', 'C:\\no\\such\\file.config'] });
    assert.equal(files.files.length, 2);
    assert.equal(files.files[1]?.data, null);
    assert.equal(files.files[1]?.text, null);
  });

  it('an engine error keeps its kind: a missing image file is an image error', async () => {
    await rejectsWith(engine.call('gather', { target: { kind: 'image', path: dir } }), (e) => {
      assert.equal(e.kind, 'image');
      assert.equal(e.code, 1);
      assert.match(e.message, /registry\.xml/);
      assert.equal(e.hint, ERROR_KINDS.image.hint);
    });
  });

  it('close: the engine answers exit and exits 0 by itself, no signal', async () => {
    await engine.close();
    assert.deepEqual(engine.exit, { exitCode: 0, signal: undefined, killed: false });
  });
});

describe('the door with fake engines', () => {
  it('a hung engine is stopped after the timeout with SIGKILL, exit 1', async () => {
    const session = startEngine({ powershell: fake(''), timeoutMs: 1000 });
    await rejectsWith(session.call('preflight', { target: example }), (e) => {
      assert.match(e.message, /did not answer the preflight request within 1 s and was stopped/);
      assert.equal(e.kind, 'environment');
    });
    await session.close();
    assert.equal(session.exit?.killed, true);
    assert.equal(session.exit?.signal, 'SIGKILL');
  });

  it('progress events reset the timer and reach both callbacks', async () => {
    const seen: EngineEvent[] = [];
    const verbose: string[] = [];
    const ps = fake(`${answerExit} let n = 0; const t = setInterval(() => { if (++n <= 4) send({ id: req.id, event: { kind: 'progress', message: 'step ' + n } }); else { clearInterval(t); send({ id: req.id, ok: true, result: { written: ['a.xml'] } }); } }, 400);`);
    const session = startEngine({ powershell: ps, timeoutMs: 1000, onEvent: (e) => verbose.push(e.message) });
    const result = await session.call('collect', { target: { kind: 'local' }, out: dir }, { onEvent: (e) => seen.push(e) });
    assert.deepEqual(result, { written: ['a.xml'], skipped: [] });
    assert.deepEqual(seen.map((e) => e.message), ['step 1', 'step 2', 'step 3', 'step 4']);
    assert.deepEqual(verbose, ['step 1', 'step 2', 'step 3', 'step 4']);
    await session.close();
    assert.deepEqual(session.exit, { exitCode: 0, signal: undefined, killed: false });
  });

  it('the engine gets the quick JIT, no telemetry and no update check; a JIT setting of the caller is kept', async () => {
    const seen = path.join(dir, 'environment.json');
    const ps = fake(answerExit, `require('node:fs').writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ jit: process.env.DOTNET_JITMinOpts ?? null, telemetry: process.env.POWERSHELL_TELEMETRY_OPTOUT ?? null, update: process.env.POWERSHELL_UPDATECHECK ?? null }));`);
    const saved = process.env['DOTNET_JITMinOpts'];
    try {
      delete process.env['DOTNET_JITMinOpts'];
      let session = startEngine({ powershell: ps });
      await session.close();
      assert.deepEqual(JSON.parse(readFileSync(seen, 'utf8')), { jit: '1', telemetry: '1', update: 'Off' });
      process.env['DOTNET_JITMinOpts'] = '0';
      session = startEngine({ powershell: ps });
      await session.close();
      assert.deepEqual(JSON.parse(readFileSync(seen, 'utf8')), { jit: '0', telemetry: '1', update: 'Off' });
    } finally {
      if (saved === undefined) delete process.env['DOTNET_JITMinOpts'];
      else process.env['DOTNET_JITMinOpts'] = saved;
    }
  });

  it('a crash is one error naming the exit code and PowerShell\'s last words', async () => {
    const session = startEngine({ powershell: fake("process.stderr.write('CLR fault\\n'); process.exit(139);") });
    await rejectsWith(session.call('preflight', { target: example }), (e) => {
      assert.match(e.message, /exited with code 139 before answering: CLR fault/);
      assert.equal(e.kind, 'environment');
    });
    await session.close();
  });

  it('an engine that exits 0 without answering is an error, not a result', async () => {
    const session = startEngine({ powershell: fake('process.exit(0);') });
    await rejectsWith(session.call('preflight', { target: example }), (e) => assert.match(e.message, /exited with code 0 before answering/));
    await session.close();
    assert.equal(session.exit?.killed, false);
  });

  it('garbage on stdout fails the request and stops the engine', async () => {
    const session = startEngine({ powershell: fake("process.stdout.write('Welcome to my profile!\\n');") });
    await rejectsWith(session.call('preflight', { target: example }), (e) => assert.match(e.message, /not JSON: Welcome to my profile!/));
    await session.close();
    assert.equal(session.exit?.killed, true);
  });

  it('an answer to a request that was not asked stops the engine', async () => {
    const session = startEngine({ powershell: fake('send({ id: 99, ok: true, result: {} });') });
    await rejectsWith(session.call('preflight', { target: example }), (e) => {
      assert.match(e.message, /answered a request that was not asked/);
      assert.equal(e.kind, 'internal');
    });
    await session.close();
  });

  it('a result of the wrong shape is an internal error naming the operation and the field', async () => {
    const bad = { ...preflight, languageMode: 7 };
    const session = startEngine({ powershell: fake(`${answerExit} send({ id: req.id, ok: true, result: ${JSON.stringify(bad)} });`) });
    await rejectsWith(session.call('preflight', { target: example }), (e) => {
      assert.match(e.message, /answered preflight with a bad result: result\.languageMode should be a string, not number 7/);
      assert.equal(e.kind, 'internal');
    });
    await session.close();
    assert.equal(session.exit?.killed, false, 'a bad result does not desynchronise the protocol');
  });

  it('a file whose SHA-256 does not match its bytes is refused', async () => {
    const file = { path: 'C:\\a.config', data: Buffer.from('<a/>').toString('base64'), sha256: '0'.repeat(64) };
    const session = startEngine({ powershell: fake(`${answerExit} send({ id: req.id, ok: true, result: { files: [${JSON.stringify(file)}] } });`) });
    await rejectsWith(session.call('readFiles', { target: example, paths: ['C:\\a.config'] }), (e) => assert.match(e.message, /result\.files\[0\]\.sha256 should be the SHA-256 of the data/));
    await session.close();
  });

  it('each error kind reaches the caller with its own kind, exit code and hint; unknown kinds are internal', async () => {
    const kinds = [...Object.keys(ERROR_KINDS), 'martian'];
    const session = startEngine({ powershell: fake(`${answerExit} const kinds = ${JSON.stringify(kinds)}; send({ id: req.id, ok: false, error: { kind: kinds[req.id - 1], message: 'went wrong ' + req.id, file: req.id === 1 ? 'registry.xml' : null } });`) });
    for (const [i, name] of kinds.entries()) {
      const kind: ErrorKind = errorKindOf(name);
      await rejectsWith(session.call('preflight', { target: example }), (e) => {
        assert.equal(e.kind, kind);
        assert.equal(e.code, ERROR_KINDS[kind].code);
        assert.equal(e.hint, ERROR_KINDS[kind].hint ?? undefined);
        assert.equal(e.message, `${i === 0 ? 'registry.xml: ' : ''}went wrong ${i + 1}`);
      });
    }
    assert.equal(errorKindOf('martian'), 'internal');
    await session.close();
    assert.equal(session.exit?.exitCode, 0);
  });

  it('an engine that ignores exit is killed after the grace period', async () => {
    const session = startEngine({ powershell: fake(''), closeGraceMs: 300 });
    await session.close();
    assert.equal(session.exit?.killed, true);
  });

  it('an engine that answers exit but does not end is killed after the grace period', async () => {
    const session = startEngine({ powershell: fake("if (req.op === 'exit') send({ id: req.id, ok: true, result: {} });", 'process.stdin.on("end", () => setInterval(() => {}, 1000));'), closeGraceMs: 300 });
    await session.close();
    assert.equal(session.exit?.killed, true);
  });

  it('an exit answer with id null is a misbehaving engine: it is killed, not trusted', async () => {
    const session = startEngine({ powershell: fake("if (req.op === 'exit') { send({ id: null, ok: true, result: {} }); setInterval(() => {}, 1000); }"), closeGraceMs: 300 });
    await session.close();
    assert.equal(session.exit?.killed, true);
  });

  it('requests after close are refused', async () => {
    const session = startEngine({ powershell: fake(answerExit) });
    await session.close();
    await rejectsWith(session.call('preflight', { target: example }), (e) => assert.equal(e.kind, 'internal'));
  });
});

describe('EXMIT_TIMEOUT_SECONDS', () => {
  it('a bad value fails before any engine starts', () => {
    const marker = path.join(dir, 'started');
    const ps = fake('', `require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'x');`);
    for (const value of ['abc', '0', '-5', ' ']) {
      assert.throws(() => timeoutFromEnv({ EXMIT_TIMEOUT_SECONDS: value }), (e: unknown) => e instanceof ExmitError && e.code === 1 && e.message.includes(`EXMIT_TIMEOUT_SECONDS="${value}"`));
      const saved = process.env['EXMIT_TIMEOUT_SECONDS'];
      process.env['EXMIT_TIMEOUT_SECONDS'] = value;
      try {
        assert.throws(() => startEngine({ powershell: ps }), /is not a positive number of seconds/);
      } finally {
        if (saved === undefined) delete process.env['EXMIT_TIMEOUT_SECONDS'];
        else process.env['EXMIT_TIMEOUT_SECONDS'] = saved;
      }
    }
    assert.equal(existsSync(marker), false);
    assert.equal(timeoutFromEnv({ EXMIT_TIMEOUT_SECONDS: '2.5' }), 2500);
    assert.equal(timeoutFromEnv({}), undefined);
  });
});
