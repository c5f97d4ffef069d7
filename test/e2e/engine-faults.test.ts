// The door to PowerShell turns every way the engine can fail into one clear error (exit 1), using
// fake PowerShell executables that crash, hang, print garbage or refuse to run scripts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, chmodSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, image, hasStackTrace, parseJson } from '../support/cli.ts';

function fakePowerShell(body: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'exmit-fake-ps-'));
  const file = path.join(dir, 'pwsh');
  writeFileSync(file, `#!/usr/bin/env bash\n${body}\n`);
  chmodSync(file, 0o755);
  return file;
}

const example = image('examples/e19-cu12-oct22su');

test('a PowerShell that crashes at start is one clear error, exit 1', () => {
  const ps = fakePowerShell('echo "Segmentation fault in CLR" >&2; exit 139');
  const run = runCli(['detect', '--target', `image:${example}`, '--powershell', ps]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /PowerShell \(.*pwsh\) exited with code 139 before answering: Segmentation fault in CLR/);
  assert.equal(hasStackTrace(run.stderr), false);
  assert.equal(run.stdout, '');
});

test('a PowerShell that hangs is stopped after the timeout, exit 1', () => {
  const ps = fakePowerShell('sleep 600');
  const run = runCli(['detect', '--target', `image:${example}`, '--powershell', ps, '--json'], { env: { EXMIT_TIMEOUT_SECONDS: '2' } });
  assert.equal(run.code, 1);
  const doc = parseJson<{ error: { code: number; message: string } }>(run);
  assert.equal(doc.error.code, 1);
  assert.match(doc.error.message, /did not answer the preflight request within 2 s/);
});

test('a PowerShell that prints something other than JSON is refused, exit 1', () => {
  const ps = fakePowerShell('read line; echo "Welcome to my profile!"; sleep 5');
  const run = runCli(['detect', '--target', `image:${example}`, '--powershell', ps]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /wrote something that is not JSON: Welcome to my profile!/);
});

test('a missing PowerShell names the path and the fix, exit 1', () => {
  const run = runCli(['detect', '--target', `image:${example}`, '--powershell', '/nonexistent/pwsh']);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /PowerShell not found: \/nonexistent\/pwsh/);
  assert.match(run.stderr, /--powershell PATH/);
});

test('a machine policy that forces AllSigned is reported in plain words, exit 1', () => {
  const ps = fakePowerShell([
    'echo "File exmit-engine.ps1 cannot be loaded. The file is not digitally signed. You cannot run this script on the current system." >&2',
    'echo "    + FullyQualifiedErrorId : UnauthorizedAccess" >&2',
    'exit 1',
  ].join('\n'));
  const run = runCli(['audit', '--target', `image:${example}`, '--powershell', ps]);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /machine policy forces signed scripts \(AllSigned\)/);
});

test('the engine is started with -NoProfile -NonInteractive -ExecutionPolicy Bypass -File, and data only on stdin', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'exmit-args-'));
  const log = path.join(dir, 'args.txt');
  const ps = fakePowerShell(`printf '%s\\n' "$@" > ${log}; exit 3`);
  runCli(['detect', '--target', `image:${example}`, '--powershell', ps]);
  const args = readFileSync(log, 'utf8').trim().split('\n');
  assert.deepEqual(args.slice(0, 5), ['-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File']);
  assert.match(args[5] ?? '', /engine[\\/]exmit-engine\.ps1$/);
  assert.equal(args.length, 6);
});

test('a bad EXMIT_TIMEOUT_SECONDS is exit 1 naming the value, before PowerShell starts', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'exmit-timeout-'));
  const marker = path.join(dir, 'started');
  const ps = fakePowerShell(`touch ${marker}; sleep 600`);
  for (const value of ['abc', '0', '-5']) {
    const run = runCli(['detect', '--target', `image:${example}`, '--powershell', ps], { env: { EXMIT_TIMEOUT_SECONDS: value } });
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`EXMIT_TIMEOUT_SECONDS="${value}" is not a positive number of seconds`));
    assert.equal(hasStackTrace(run.stderr), false);
  }
  assert.equal(existsSync(marker), false);
});
