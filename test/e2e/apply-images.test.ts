// apply, rollback and status on copies of server images, with the real PowerShell engine: what an
// admin checks afterwards (the audit, every file's bytes, the exit code, one JSON document), faults
// injected at each step through the engine's test hook, a killed engine, locks, and refusals.
// Results run in-process against one engine for the file; the CLI is spawned where the process itself
// is under test (no terminal without --yes, a crash of the engine, a lock held by a live process).
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { image, parseJson, runCli, hasStackTrace, ROOT as ROOT_DIR } from '../support/cli.ts';
import { runInProcess, sharedEngine } from '../support/in-process.ts';
import { decodeText } from '../../src/text/encoding.ts';
import { readServiceState } from '../../src/apply/clixml-edit.ts';

// The engine honours fault hooks only when its own environment says so (it inherits this one).
process.env['EXMIT_TEST_HOOKS'] = '1';
const engine = sharedEngine();

interface RunDoc {
  results: { id: string; outcome: string; reason: string; changes: { kind: string; target: string }[] }[];
  diffs: { file: string; diff: string }[];
  journal: string | null;
  error?: { code: number; message: string; hint: string | null };
}
interface AuditDoc {
  mitigations: { id: string; status: string; reason: string }[];
}
interface StatusDoc {
  applied: { id: string; inPlace: boolean; drift: string[] }[];
  interrupted: { runId: string }[];
  exposed: boolean;
}

/** A fresh copy of an image in a temporary folder. */
function copyImage(name: string): string {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'exmit-apply-')), name.replace(/\W+/g, '-'));
  cpSync(image(name), dir, { recursive: true });
  return dir;
}

/** Every file of the image (its .exmit state folder apart) with its SHA-256. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (at: string, rel: string): void => {
    for (const entry of readdirSync(at)) {
      if (rel === '' && entry === '.exmit') continue;
      const full = path.join(at, entry);
      const r = rel === '' ? entry : `${rel}/${entry}`;
      if (statSync(full).isDirectory()) walk(full, r);
      else out.set(r, createHash('sha256').update(readFileSync(full)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

function changedFiles(before: Map<string, string>, after: Map<string, string>): string[] {
  const names = new Set([...before.keys(), ...after.keys()]);
  return [...names].filter((n) => before.get(n) !== after.get(n)).sort();
}

async function run(args: string[], env: Record<string, string | undefined> = {}) {
  const saved: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  try {
    return await runInProcess(engine, args);
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

async function auditStatuses(dir: string): Promise<Record<string, string>> {
  const r = await run(['audit', '--json', '--target', `image:${dir}`]);
  return Object.fromEntries(parseJson<AuditDoc>(r).mitigations.map((m) => [m.id, m.status]));
}

const EXPOSED_BY_CONFIG = ['needed', 'partial', 'outdated'];
const EXAMPLE = 'examples/e19-cu12-oct22su';

describe('apply, rollback and status on the bundled example image', () => {
  it('apply --needed protects the image; the audit shows nothing needed; a second apply writes nothing; rollback --all gives every byte back', async () => {
    const dir = copyImage(EXAMPLE);
    const original = snapshot(dir);
    const applied = await run(['apply', '--needed', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(applied.code, 0, applied.stderr);
    const doc = parseJson<RunDoc>(applied);
    assert.deepEqual(doc.results.filter((r) => r.outcome === 'applied').map((r) => r.id).sort(), ['owa-csp-xss', 'proxynotshell-autodiscover', 'tokencache-module']);
    assert.match(doc.journal ?? '', /^\d{8}T\d{6}Z-[0-9a-f]{6}\.jsonl$/);
    assert.deepEqual(changedFiles(original, snapshot(dir)), ['fs/C/Windows/System32/inetsrv/config/applicationHost.config']);
    assert.equal(statSync(path.join(dir, '.exmit')).mode & 0o777, 0o700, 'the state folder is the owner\'s only');

    const statuses = await auditStatuses(dir);
    assert.deepEqual(Object.entries(statuses).filter(([, s]) => EXPOSED_BY_CONFIG.includes(s)), []);
    assert.equal(statuses['proxynotshell-autodiscover'], 'mitigated');

    const afterApply = snapshot(dir);
    const again = await run(['apply', '--needed', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(again.code, 0);
    const againDoc = parseJson<RunDoc>(again);
    assert.ok(againDoc.results.length >= 3);
    assert.ok(againDoc.results.every((r) => r.outcome === 'already-mitigated' || r.outcome === 'skipped'), JSON.stringify(againDoc.results));
    assert.equal(againDoc.journal, null, 'nothing executed');
    assert.deepEqual(changedFiles(afterApply, snapshot(dir)), [], 'a second apply writes nothing');

    const status = await run(['status', '--json', '--target', `image:${dir}`]);
    const statusDoc = parseJson<StatusDoc>(status);
    assert.deepEqual(statusDoc.applied.map((a) => [a.id, a.inPlace]).sort(), [['owa-csp-xss', true], ['proxynotshell-autodiscover', true], ['tokencache-module', true]]);

    const rolled = await run(['rollback', '--all', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(rolled.code, 0, rolled.stderr);
    assert.ok(parseJson<RunDoc>(rolled).results.every((r) => r.outcome === 'rolled-back'));
    assert.deepEqual(changedFiles(original, snapshot(dir)), [], 'every file byte-identical to before');
    const empty = parseJson<StatusDoc>(await run(['status', '--json', '--target', `image:${dir}`]));
    assert.deepEqual(empty.applied, []);
  });

  it('--dry-run prints a unified diff of each file and changes nothing, not even a state folder', async () => {
    const dir = copyImage(EXAMPLE);
    const original = snapshot(dir);
    const r = await run(['apply', '--needed', '--dry-run', '--target', `image:${dir}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^--- a\/applicationHost\.config$/m);
    assert.match(r.stdout, /^\+ +<rule name="exmit proxynotshell-autodiscover" stopProcessing="true">$/m);
    assert.match(r.stdout, /^- +<add name="TokenCacheModule" image="%windir%\\System32\\inetsrv\\cachtokn\.dll" \/>$/m);
    assert.match(r.stdout, /would apply/);
    assert.deepEqual(changedFiles(original, snapshot(dir)), []);
    assert.equal(existsSync(path.join(dir, '.exmit')), false);
    const whatIf = await run(['apply', 'CVE-2022-41040', '--what-if', '--json', '--target', `image:${dir}`]);
    assert.equal(whatIf.code, 0);
    assert.deepEqual(parseJson<RunDoc>(whatIf).results.map((x) => [x.id, x.outcome]), [['proxynotshell-autodiscover', 'applied']]);
    assert.equal(existsSync(path.join(dir, '.exmit')), false);
  });

  it('a fault at each step of a multi-mitigation run ends in exit 4 with the image as it was and one JSON document holding results and error', async () => {
    const dir = copyImage(EXAMPLE);
    const original = snapshot(dir);
    // The example's run writes one file (applicationHost.config): step 0, before and after the write.
    for (const when of ['before', 'after']) {
      const r = await run(['apply', '--needed', '--yes', '--json', '--target', `image:${dir}`], { EXMIT_TEST_FAULT: JSON.stringify({ step: 0, when, kind: 'fail' }) });
      assert.equal(r.code, 4, `${when}: ${r.stdout}${r.stderr}`);
      const doc = parseJson<RunDoc>(r);
      assert.equal(doc.error?.code, 4);
      assert.match(doc.error?.hint ?? '', /undone/);
      assert.ok(doc.results.some((x) => x.outcome === 'failed'));
      assert.deepEqual(changedFiles(original, snapshot(dir)), [], `${when}: the image is as it was`);
      const status = parseJson<StatusDoc>(await run(['status', '--json', '--target', `image:${dir}`]));
      assert.deepEqual(status.applied, []);
      assert.deepEqual(status.interrupted, []);
    }
  });

  it('a test fault is refused by an engine that was not started for tests', async () => {
    const dir = copyImage(EXAMPLE);
    const r = runCli(['apply', '--needed', '--yes', '--target', `image:${dir}`], { env: { EXMIT_TEST_HOOKS: '', EXMIT_TEST_FAULT: JSON.stringify({ step: 0, when: 'before', kind: 'fail' }) } });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /EXMIT_TEST_HOOKS|test hook|fault/i);
    assert.equal(hasStackTrace(r.stderr), false);
  });

  it('an engine killed in the middle of a write leaves a run that status reports and rollback --all repairs', () => {
    const dir = copyImage(EXAMPLE);
    const original = snapshot(dir);
    const crashed = runCli(['apply', '--needed', '--yes', '--target', `image:${dir}`], { env: { EXMIT_TEST_HOOKS: '1', EXMIT_TEST_FAULT: JSON.stringify({ step: 0, when: 'after', kind: 'exit' }) } });
    assert.equal(crashed.code, 1, crashed.stderr);
    assert.match(crashed.stderr, /PowerShell .* (exited with code 9|was killed)/);
    assert.notDeepEqual(changedFiles(original, snapshot(dir)), [], 'the write happened before the crash');
    const status = runCli(['status', '--json', '--target', `image:${dir}`]);
    assert.equal(status.code, 3);
    assert.equal(parseJson<StatusDoc>(status).interrupted.length, 1);
    const refused = runCli(['apply', '--needed', '--yes', '--target', `image:${dir}`]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /interrupted/);
    const repaired = runCli(['rollback', '--all', '--yes', '--target', `image:${dir}`]);
    assert.equal(repaired.code, 0, repaired.stderr);
    assert.deepEqual(changedFiles(original, snapshot(dir)), [], 'repaired byte for byte');
    const after = parseJson<StatusDoc>(runCli(['status', '--json', '--target', `image:${dir}`]));
    assert.deepEqual(after.interrupted, []);
  });

  it('a lock held by a live run stops another run (exit 1, naming it); a dead run\'s lock is cleared', async () => {
    const dir = copyImage(EXAMPLE);
    const original = snapshot(dir);
    mkdirSync(path.join(dir, '.exmit'));
    const sleeper = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      writeFileSync(path.join(dir, '.exmit', 'lock'), JSON.stringify({ pid: sleeper.pid, host: hostname(), runId: 'other-run', startedAt: new Date().toISOString() }));
      const r = await run(['apply', '--needed', '--yes', '--target', `image:${dir}`]);
      assert.equal(r.code, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /lock/);
      assert.match(r.stderr, new RegExp(String(sleeper.pid)));
      assert.deepEqual(changedFiles(original, snapshot(dir)), []);
    } finally {
      sleeper.kill();
    }
    writeFileSync(path.join(dir, '.exmit', 'lock'), JSON.stringify({ pid: 999999, host: hostname(), runId: 'dead-run', startedAt: '2026-01-01T00:00:00Z' }));
    const r = await run(['apply', '--needed', '--yes', '--target', `image:${dir}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(path.join(dir, '.exmit', 'lock')), false, 'the run released its lock');
  });

  it('status reports drift when someone takes exmit\'s rule out by hand (exit 3), and rollback removes only what is still exmit\'s', async () => {
    const dir = copyImage(EXAMPLE);
    assert.equal((await run(['apply', 'proxynotshell-autodiscover', '--yes', '--target', `image:${dir}`])).code, 0);
    const apphost = path.join(dir, 'fs/C/Windows/System32/inetsrv/config/applicationHost.config');
    const text = readFileSync(apphost, 'utf8');
    writeFileSync(apphost, text.replace(/\s*<rule name="exmit proxynotshell-autodiscover"[\s\S]*?<\/rule>/, ''));
    const status = await run(['status', '--json', '--target', `image:${dir}`]);
    assert.equal(status.code, 3);
    const applied = parseJson<StatusDoc>(status).applied;
    assert.equal(applied[0]?.inPlace, false);
    assert.match(applied[0]?.drift.join('; ') ?? '', /no longer in applicationHost\.config/);
  });

  it('refusals change nothing: no terminal and no --yes (exit 2), an unknown id (exit 2, nearest id), --allow-unsigned (exit 2)', () => {
    const dir = copyImage(EXAMPLE);
    const original = snapshot(dir);
    const noTty = runCli(['apply', '--needed', '--target', `image:${dir}`]);
    assert.equal(noTty.code, 2);
    assert.match(noTty.stderr, /--yes/);
    const unknown = runCli(['apply', 'proxynotshel-autodiscover', '--yes', '--target', `image:${dir}`]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown mitigation id or CVE: "proxynotshel-autodiscover"/);
    assert.match(unknown.stderr, /Did you mean "proxynotshell-autodiscover"/);
    const unsigned = runCli(['apply', '--needed', '--yes', '--allow-unsigned', '--target', `image:${dir}`]);
    assert.equal(unsigned.code, 2);
    assert.deepEqual(changedFiles(original, snapshot(dir)), []);
    assert.equal(existsSync(path.join(dir, '.exmit')), false);
  });

  it('a patch-only id is skipped with its reason (exit 0); rolling back what exmit did not apply says so', async () => {
    const dir = copyImage(EXAMPLE);
    const r = await run(['apply', 'owassrf', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(r.code, 0);
    const doc = parseJson<RunDoc>(r);
    assert.equal(doc.results[0]?.outcome, 'skipped');
    assert.match(doc.results[0]?.reason ?? '', /^patch-only: /);
    const back = await run(['rollback', 'proxynotshell-autodiscover', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(back.code, 0);
    assert.equal(parseJson<RunDoc>(back).results[0]?.outcome, 'not-applied');
  });
});

describe('apply leaves EEMS\'s rule alone', () => {
  before(() => {
    assert.ok(existsSync(image('e19-cu12-oct22su-eems-rule')));
  });

  it('a mitigation EEMS already applied is not duplicated, and rollback does not remove EEMS\'s rule', async () => {
    const dir = copyImage('e19-cu12-oct22su-eems-rule');
    const r = await run(['apply', 'proxynotshell-autodiscover', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(parseJson<RunDoc>(r).results[0]?.outcome, 'already-mitigated');
    const original = snapshot(dir);
    const back = await run(['rollback', 'proxynotshell-autodiscover', '--yes', '--json', '--target', `image:${dir}`]);
    const doc = parseJson<RunDoc>(back);
    assert.equal(doc.results[0]?.outcome, 'not-applied');
    assert.match(doc.results[0]?.reason ?? '', /EEMS/);
    assert.deepEqual(changedFiles(original, snapshot(dir)), []);
  });
});

describe('every bundled mitigation on vulnerable 2013 (with URL Rewrite), 2016 and 2019 images', () => {
  for (const name of ['e15-cu23-feb21-rewrite', 'e16-cu19-feb21', 'e19-cu8-feb21']) {
    it(`${name}: apply --needed --allow-breaking leaves nothing needed, partial or outdated; a second apply writes nothing; rollback --all gives every byte back`, async () => {
      const dir = copyImage(name);
      const original = snapshot(dir);
      const applied = await run(['apply', '--needed', '--allow-breaking', '--yes', '--json', '--target', `image:${dir}`]);
      assert.equal(applied.code, 0, applied.stdout + applied.stderr);
      const outcomes = parseJson<RunDoc>(applied).results;
      assert.ok(outcomes.filter((r) => r.outcome === 'applied').length >= 5, JSON.stringify(outcomes));
      const statuses = await auditStatuses(dir);
      assert.deepEqual(Object.entries(statuses).filter(([, s]) => EXPOSED_BY_CONFIG.includes(s)), [], JSON.stringify(statuses));
      const afterApply = snapshot(dir);
      const again = await run(['apply', '--needed', '--allow-breaking', '--yes', '--json', '--target', `image:${dir}`]);
      assert.equal(again.code, 0);
      assert.deepEqual(changedFiles(afterApply, snapshot(dir)), []);
      const rolled = await run(['rollback', '--all', '--yes', '--target', `image:${dir}`]);
      assert.equal(rolled.code, 0, rolled.stderr);
      assert.deepEqual(changedFiles(original, snapshot(dir)), []);
    });
  }

  it('2013 without URL Rewrite: refused before any change, naming the module and where to get it', async () => {
    const dir = copyImage('e15-cu23-feb21-norewrite');
    const original = snapshot(dir);
    const r = await run(['apply', '--needed', '--allow-breaking', '--yes', '--target', `image:${dir}`]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /URL Rewrite module \(RewriteModule\) is not installed/);
    assert.match(r.stderr, /iis\.net\/downloads\/microsoft\/url-rewrite/);
    assert.deepEqual(changedFiles(original, snapshot(dir)), []);
    assert.equal(existsSync(path.join(dir, '.exmit')), false, 'a refused run leaves no state folder behind');
  });

  it('2013 without URL Rewrite: the audit\'s advice applies what needs no rule now, and its commands work as given', async () => {
    const dir = copyImage('e15-cu23-feb21-norewrite');
    const audit = await run(['audit', '--json', '--target', `image:${dir}`]);
    const advice = parseJson<{ advice: { kind: string; command?: string; ids?: string[]; text: string }[] }>(audit).advice.filter((a) => a.kind === 'apply');
    const rules = ['proxylogon-cookie', 'proxynotshell-autodiscover'];
    const last = advice[advice.length - 1];
    assert.deepEqual(last?.ids, rules);
    assert.match(last?.text ?? '', /^Install IIS URL Rewrite 2\.1 \(https:\/\/www\.iis\.net\/downloads\/microsoft\/url-rewrite\)/);
    const now = advice.slice(0, -1);
    assert.ok(now.length > 0);
    for (const a of now) {
      assert.ok(a.ids !== undefined && a.ids.every((id) => !rules.includes(id)), a.text);
      const args = (a.command ?? '').split(' ');
      assert.deepEqual(args.slice(0, 2), ['exmit', 'apply']);
      const r = await run([...args.slice(1), '--yes']);
      assert.equal(r.code, 0, `${a.command}: ${r.stderr}`);
    }
    const statuses = await auditStatuses(dir);
    for (const a of now) for (const id of a.ids ?? []) assert.equal(statuses[id], 'mitigated', id);
    for (const id of rules) assert.equal(statuses[id], 'needed', id);
  });

  it('a fault at each step of a three-file run (services.xml, apppools.xml, applicationHost.config) ends in exit 4 with the image as it was', async () => {
    const dir = copyImage('e16-cu19-feb21');
    const original = snapshot(dir);
    for (const step of [0, 1, 2]) {
      for (const when of ['before', 'after']) {
        const r = await run(['apply', '--needed', '--allow-breaking', '--yes', '--json', '--target', `image:${dir}`], { EXMIT_TEST_FAULT: JSON.stringify({ step, when, kind: 'fail' }) });
        assert.equal(r.code, 4, `step ${step} ${when}: ${r.stdout}`);
        assert.deepEqual(changedFiles(original, snapshot(dir)), [], `step ${step} ${when}`);
      }
    }
  });

  it('Managed Availability stays stopped while another mitigation holds it; a service someone started again is a conflict left alone (exit 5)', async () => {
    const dir = copyImage('e16-cu19-feb21');
    assert.equal((await run(['apply', 'proxylogon-ecp-apppool', 'proxylogon-oab-apppool', '--yes', '--target', `image:${dir}`])).code, 0);
    const one = await run(['rollback', 'proxylogon-ecp-apppool', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(one.code, 0, one.stderr);
    const services = decodeText(new Uint8Array(readFileSync(path.join(dir, 'services.xml')))).text;
    assert.deepEqual(readServiceState(services, 'services.xml', 'MSExchangeHM'), { status: 'Stopped', startType: 'Disabled' });
    const statuses = await auditStatuses(dir);
    assert.equal(statuses['proxylogon-oab-apppool'], 'mitigated');
    // Managed Availability is still stopped (oab holds it): ecp's app pool runs again, so only part of it is in effect.
    assert.equal(statuses['proxylogon-ecp-apppool'], 'partial');
    // Someone starts the OAB app pool again by hand (apppools.xml says so): rolling back leaves it and says so.
    const pools = path.join(dir, 'apppools.xml');
    const poolBytes = readFileSync(pools);
    const utf16 = poolBytes[0] === 0xff;
    const poolText = new TextDecoder(utf16 ? 'utf-16le' : 'utf-8').decode(poolBytes);
    const edited = poolText.replace(/(<S N="Name">MSExchangeOABAppPool<\/S>\s*<S N="State">)Stopped(<\/S>\s*<B N="autoStart">)false/, '$1Started$2true');
    assert.notEqual(edited, poolText);
    writeFileSync(pools, utf16 ? Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(edited.replace(/^\uFEFF/, ''), 'utf16le')]) : Buffer.from(edited, 'utf8'));
    const two = await run(['rollback', '--all', '--yes', '--json', '--target', `image:${dir}`]);
    assert.equal(two.code, 5, two.stdout);
    const doc = parseJson<RunDoc>(two);
    assert.equal(doc.error?.code, 5);
    assert.equal(doc.results.find((r) => r.id === 'proxylogon-oab-apppool')?.outcome, 'conflict');
    assert.match(doc.results.find((r) => r.id === 'proxylogon-oab-apppool')?.reason ?? '', /MSExchangeOABAppPool is Started/);
  });
});

describe('the prompt on a terminal', () => {
  /** Runs exmit under a pseudo-terminal (util-linux script) with `answer` typed at it; its output and exit code. */
  function onTerminal(args: string[], answer: string): { code: number; output: string } {
    const command = ['stty cols 100;', process.execPath, path.join(ROOT_DIR, 'bin', 'exmit.js'), ...args.map((a) => `'${a}'`)].join(' ');
    const result = spawnSync('bash', ['-c', `printf '${answer}\\n' | timeout 120 script -qec "${command.replace(/"/g, '\\"')}" /dev/null`], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 150_000 });
    return { code: result.status ?? -1, output: result.stdout };
  }

  it('says what each mitigation changes and breaks and that IIS will recycle, then asks; "n" changes nothing, "y" applies', () => {
    const dir = copyImage(EXAMPLE);
    const original = snapshot(dir);
    const no = onTerminal(['apply', '--needed', '--target', `image:${dir}`], 'n');
    assert.equal(no.code, 1, no.output);
    assert.match(no.output, /side effect: printing the OWA calendar may not work/);
    assert.match(no.output, /IIS will recycle its worker processes/);
    assert.match(no.output, /Apply 3 mitigations to \S+\? \[y\/N\]/);
    assert.match(no.output, /nothing was changed/);
    assert.deepEqual(changedFiles(original, snapshot(dir)), []);
    const yes = onTerminal(['apply', '--needed', '--target', `image:${dir}`], 'y');
    assert.equal(yes.code, 0, yes.output);
    assert.match(yes.output, /proxynotshell-autodiscover +applied/);
    assert.notDeepEqual(changedFiles(original, snapshot(dir)), []);
  });
});
