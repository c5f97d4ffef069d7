// End to end: exmit's commands, the real PowerShell engine, server images made from real captures.
// What an admin or a script checks: the statuses, the reasons, the exit code, one JSON document.
// Results run in-process against one engine for the file; the built CLI is spawned where the process
// itself is under test (stderr of a --json run, one engine per run, the engine's own clean exit).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, chmodSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, image, parseJson, hasStackTrace } from '../support/cli.ts';
import { findPwsh } from '../../scripts/find-pwsh.ts';
import { ROOT } from '../support/cli.ts';
import { runInProcess, sharedEngine } from '../support/in-process.ts';

const engine = sharedEngine();

interface AuditDoc {
  server: { name: string; build: string; support: { state: string; reason: string; lastUpdate: { name: string; build: string; releaseDate: string } | null } };
  catalog: { source: string; serial: number };
  mitigations: { id: string; status: string; reason: string; stillApplied: boolean; bypasses: string[] }[];
  exposed: boolean;
  advice: { kind: string; text: string; command?: string; name?: string; build?: string; kb?: string | null; fixes?: string[] }[];
  warnings: string[];
}

async function auditJson(img: string): Promise<{ code: number; doc: AuditDoc; stderr: string }> {
  const run = await runInProcess(engine, ['audit', '--json', '--target', `image:${image(img)}`]);
  return { code: run.code, doc: parseJson<AuditDoc>(run), stderr: run.stderr };
}

function statuses(doc: AuditDoc): Record<string, string> {
  return Object.fromEntries(doc.mitigations.map((m) => [m.id, m.status]));
}

const cases: { image: string; code: number; expect: Record<string, string> }[] = [
  {
    image: 'examples/e19-cu12-oct22su',
    code: 3,
    expect: { 'proxynotshell-autodiscover': 'needed', owassrf: 'patch-only', 'owa-csp-xss': 'needed', 'tokencache-module': 'needed', 'proxylogon-cookie': 'fixed', 'proxylogon-ecp-apppool': 'fixed' },
  },
  { image: 'e19-cu12-oct22su-eems-rule', code: 3, expect: { 'proxynotshell-autodiscover': 'mitigated', owassrf: 'patch-only' } },
  { image: 'e19-cu12-oct22su-misplaced', code: 3, expect: { 'proxynotshell-autodiscover': 'needed' } },
  { image: 'e19-cu12-oct22su-outdated', code: 3, expect: { 'proxynotshell-autodiscover': 'outdated' } },
  { image: 'e19-cu12-nov22su-eems', code: 3, expect: { 'proxynotshell-autodiscover': 'fixed', owassrf: 'fixed', 'tokencache-module': 'fixed', 'owa-csp-xss': 'needed' } },
  {
    image: 'e19-cu14-jun26su',
    code: 0,
    expect: { 'proxynotshell-autodiscover': 'fixed', owassrf: 'fixed', 'owa-csp-xss': 'fixed', 'tokencache-module': 'fixed', 'proxylogon-cookie': 'fixed' },
  },
  // Everything in the catalog fixed or not applicable, and yet exposed: Exchange 2013 gets no more updates.
  { image: 'e15-cu23-mar23su-patched', code: 3, expect: { 'proxynotshell-autodiscover': 'fixed', 'tokencache-module': 'fixed', 'owa-csp-xss': 'not-applicable' } },
  // Current (CU15 got the newest update), fully patched, the EEMS rules still in place: not exposed.
  { image: 'e19-cu15-aug26su', code: 0, expect: { 'proxynotshell-autodiscover': 'fixed', owassrf: 'fixed', 'owa-csp-xss': 'fixed', 'tokencache-module': 'fixed' } },
];

describe('audit on server images', () => {
  for (const c of cases) {
    it(`${c.image}: exit ${c.code}, ${Object.entries(c.expect).map(([k, v]) => `${k} ${v}`).join(', ')}`, async () => {
      const { code, doc } = await auditJson(c.image);
      assert.equal(code, c.code);
      assert.equal(doc.exposed, c.code === 3);
      const got = statuses(doc);
      for (const [id, status] of Object.entries(c.expect)) assert.equal(got[id], status, `${id}: ${doc.mitigations.find((m) => m.id === id)?.reason}`);
      assert.equal(doc.catalog.source, 'bundled');
    });
  }

  it('the EEMS/EOMT rule names are recognised by what the rule does, and the reason names the rule and file', async () => {
    const { doc } = await auditJson('e19-cu12-oct22su-eems-rule');
    const pns = doc.mitigations.find((m) => m.id === 'proxynotshell-autodiscover');
    assert.match(pns?.reason ?? '', /"EEMS M1\.1 PowerShell - inbound" \(C:\\inetpub\\wwwroot\\web\.config\)/);
    assert.match(pns?.reason ?? '', /temporary: install Exchange 2019 CU12 Nov22SU \(15\.2\.1118\.20\)/);
  });

  it('a fixed build with the EEMS rule still in place says it can be rolled back', async () => {
    const { doc } = await auditJson('e19-cu12-nov22su-eems');
    const pns = doc.mitigations.find((m) => m.id === 'proxynotshell-autodiscover');
    assert.equal(pns?.stillApplied, true);
  });

  it('human output: a table, a one-line verdict, the update to install, and the reminder', async () => {
    const run = await runInProcess(engine, ['audit', '--target', `image:${image('examples/e19-cu12-oct22su')}`]);
    assert.equal(run.code, 3);
    assert.match(run.stdout, /^Exchange 2019 CU12 Oct22SU \(15\.2\.1118\.15\)/);
    assert.match(run.stdout, /needed\s+proxynotshell-autodiscover\s+CVE-2022-41040, CVE-2022-41082/);
    assert.match(run.stdout, /^EXPOSED: 3 needed, 1 patch-only, 4 fixed$/m);
    assert.match(run.stdout, /move to a supported CU/);
    assert.match(run.stdout, /Mitigating is not remediating/);
    assert.doesNotMatch(run.stdout, /\u001b\[/, 'NO_COLOR: no escape codes');
  });

  it('--json prints exactly one JSON document on stdout, nothing on stderr for a clean image', () => {
    const run = runCli(['audit', '--json', '--target', `image:${image('e19-cu14-jun26su')}`]);
    assert.doesNotThrow(() => JSON.parse(run.stdout));
    assert.equal(run.stderr, '');
  });

  it('support: the fully patched 2013 image is exposed for its support state alone, with its own verdict line', async () => {
    const { code, doc } = await auditJson('e15-cu23-mar23su-patched');
    assert.equal(code, 3);
    assert.equal(doc.mitigations.some((m) => ['needed', 'partial', 'outdated', 'patch-only'].includes(m.status)), false);
    assert.equal(doc.server.support.state, 'product-ended');
    assert.deepEqual(doc.server.support.lastUpdate, { name: 'Exchange 2013 CU23 Mar23SU', build: '15.0.1497.48', releaseDate: '2023-03-14' });
    const run = runCli(['audit', '--target', `image:${image('e15-cu23-mar23su-patched')}`]);
    assert.match(run.stdout, /^EXPOSED: nothing in the catalog is open/m);
    assert.match(run.stdout, /^PRODUCT ENDED: Exchange 2013 has had no security update since 2023-03-14/m);
    assert.doesNotMatch(run.stdout, /Not exposed/);
  });

  it('support in detect --json: current on 2019 CU15 Aug26SU, cu-behind on CU12', () => {
    const cur = parseJson<AuditDoc['server']>(runCli(['detect', '--json', '--target', `image:${image('e19-cu15-aug26su')}`]));
    assert.equal(cur.support.state, 'current');
    const behind = parseJson<AuditDoc['server']>(runCli(['detect', '--json', '--target', `image:${image('examples/e19-cu12-oct22su')}`]));
    assert.equal(behind.support.state, 'cu-behind');
    assert.match(behind.support.reason, /went to CU14 and CU15, not to CU12/);
  });

  it('advice on each bundled image names the right update first, with its build and KB', async () => {
    const first = async (img: string) => (await auditJson(img)).doc.advice.find((a) => a.kind === 'update' || a.kind === 'cu');
    const cases: [string, string, string, string][] = [
      ['examples/e19-cu12-oct22su', 'Exchange 2019 CU12 Nov23SU', '15.2.1118.40', 'KB5032146'],
      ['e19-cu12-nov22su-eems', 'Exchange 2019 CU12 Nov23SU', '15.2.1118.40', 'KB5032146'],
      ['e19-cu14-jun26su', 'Exchange 2019 CU14 Aug26SU', '15.2.1544.44', 'KB5121575'],
      ['e16-cu22-nov22su', 'Exchange 2016 CU23 Aug26SU', '15.1.2507.72', 'KB5121576'],
      ['e16-cu23-jun26su', 'Exchange 2016 CU23 Aug26SU', '15.1.2507.72', 'KB5121576'],
      ['se-rtm-jun26su', 'Exchange SE RTM Aug26SU', '15.2.2562.46', 'KB5121573'],
    ];
    for (const [img, name, build, kb] of cases) {
      const a = await first(img);
      assert.deepEqual({ name: a?.name, build: a?.build, kb: a?.kb }, { name, build, kb }, img);
    }
    const example = (await auditJson('examples/e19-cu12-oct22su')).doc.advice;
    assert.equal(example[0]?.kind, 'apply');
    assert.match(example[0]?.command ?? '', /^exmit apply --needed --target image:/);
    assert.deepEqual(example.find((a) => a.kind === 'update')?.fixes, ['proxynotshell-autodiscover', 'owassrf']);
    assert.deepEqual(example.find((a) => a.kind === 'cu')?.fixes, ['owa-csp-xss']);
    assert.ok(example.some((a) => a.kind === 'eems'));
  });

  it('human output at 80 columns: reasons wrapped under their row, "Do this now" after the table, bypasses only with --verbose', () => {
    const run = runCli(['audit', '--target', `image:${image('e19-cu12-oct22su-outdated')}`]);
    for (const line of run.stdout.split('\n')) if (!/\S{60,}/.test(line)) assert.ok(line.length <= 80, `${line.length}: ${line}`);
    assert.match(run.stdout, /\n\nDo this now:\n {2}1\. Apply the mitigations/);
    assert.match(run.stdout, /known bypasses/);
    assert.doesNotMatch(run.stdout, /gets through:/);
    const verbose = runCli(['audit', '--verbose', '--target', `image:${image('e19-cu12-oct22su-outdated')}`]);
    assert.match(verbose.stdout, /gets through: published bypass: powershell percent-encoded/);
  });

  it('no warning about missing exports where no status depends on them (Edge)', async () => {
    const { stderr, doc } = await auditJson('e19-edge');
    assert.deepEqual(doc.warnings, []);
    assert.doesNotMatch(stderr, /the image has no/);
  });

  it('a rule that is not there is not mentioned: no "remove the rule" on a June build without one', async () => {
    const { doc } = await auditJson('e19-cu14-jun26su');
    assert.doesNotMatch(doc.mitigations.find((m) => m.id === 'owa-csp-xss')?.reason ?? '', /rule/);
  });

  it('colour per stream: stdout to a file from a terminal gets no escape codes; on the terminal it does', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'exmit-tty-'));
    const out = path.join(dir, 'report.txt');
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NO_COLOR' && k !== 'FORCE_COLOR') env[k] = v;
    const cmd = `"${process.execPath}" "${path.join(ROOT, 'bin', 'exmit.js')}" audit --target "image:${image('examples/e19-cu12-oct22su')}"`;
    // `script` gives the run a pseudo-terminal for stdin, stdout and stderr (sized, since a 0-column
    // terminal is another issue's case); the shell then sends stdout to a file.
    const redirected = spawnSync('script', ['-qec', `stty cols 100 rows 40; ${cmd} > "${out}"`, '/dev/null'], { env, encoding: 'utf8', timeout: 180_000 });
    assert.equal(redirected.status, 3, redirected.stdout + redirected.stderr);
    const report = readFileSync(out, 'utf8');
    assert.match(report, /EXPOSED: 3 needed/);
    assert.doesNotMatch(report, /\u001b\[/, 'escape codes in a file');
    const onTerminal = spawnSync('script', ['-qec', `stty cols 100 rows 40; ${cmd}`, '/dev/null'], { env, encoding: 'utf8', timeout: 180_000 });
    assert.match(onTerminal.stdout, /\u001b\[31mEXPOSED/, 'the same run on a terminal is coloured');
  });

  it('one PowerShell process does all the PowerShell work of an audit', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'exmit-count-'));
    const log = path.join(dir, 'starts.log');
    const wrapper = path.join(dir, 'pwsh');
    writeFileSync(wrapper, `#!/usr/bin/env bash\necho start >> ${log}\nexec ${findPwsh(ROOT)} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const run = runCli(['audit', '--json', '--target', `image:${image('examples/e19-cu12-oct22su')}`, '--powershell', wrapper]);
    assert.equal(run.code, 3, run.stderr);
    assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 1);
  });

  it('a normal run ends with the engine exiting 0 by itself: a wrapper around PowerShell sees exit 0, not a signal', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'exmit-exit-'));
    const log = path.join(dir, 'exit.log');
    const wrapper = path.join(dir, 'pwsh');
    // Not exec: the wrapper outlives PowerShell and records how it ended; a killed wrapper records nothing.
    writeFileSync(wrapper, `#!/usr/bin/env bash
${findPwsh(ROOT)} "$@"
echo "status $?" >> ${log}
`);
    chmodSync(wrapper, 0o755);
    for (const command of ['audit', 'detect']) {
      const run = runCli([command, '--json', '--target', `image:${image('e19-cu14-jun26su')}`, '--powershell', wrapper]);
      assert.equal(run.code, 0, run.stderr);
    }
    assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['status 0', 'status 0']);
  });
});

describe('detect on server images', () => {
  const detectCases: { image: string; name: string; build: string; roles: string[]; buildSource: string }[] = [
    { image: 'examples/e19-cu12-oct22su', name: 'Exchange 2019 CU12 Oct22SU', build: '15.2.1118.15', roles: ['Mailbox', 'ClientAccess', 'ManagementTools'], buildSource: 'exsetup' },
    { image: 'e19-cu12-nov22su-eems', name: 'Exchange 2019 CU12 Nov22SU', build: '15.2.1118.20', roles: ['Mailbox', 'ClientAccess', 'ManagementTools'], buildSource: 'exsetup' },
    { image: 'e19-cu14-jun26su', name: 'Exchange 2019 CU14 Jun26SU', build: '15.2.1544.41', roles: ['Mailbox', 'ClientAccess', 'ManagementTools'], buildSource: 'exsetup' },
  ];
  for (const c of detectCases) {
    it(`${c.image}: ${c.name}`, async () => {
      const run = await runInProcess(engine, ['detect', '--json', '--target', `image:${image(c.image)}`]);
      assert.equal(run.code, 0, run.stderr);
      const doc = parseJson<{ name: string; build: string; roles: string[]; buildSource: string; exactBuild: boolean }>(run);
      assert.equal(doc.name, c.name);
      assert.equal(doc.build, c.build);
      assert.deepEqual(doc.roles, c.roles);
      assert.equal(doc.buildSource, c.buildSource);
      assert.equal(doc.exactBuild, true);
    });
  }
});

describe('usage errors', () => {
  it('an unknown command is exit 2 with a one-line message', () => {
    const run = runCli(['audti']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown command 'audti'/);
    assert.equal(hasStackTrace(run.stderr), false);
  });
  it('an unknown option with --json gives the error document, exit 2', () => {
    const run = runCli(['audit', '--json', '--bogus']);
    assert.equal(run.code, 2);
    const doc = parseJson<{ error: { code: number; message: string } }>(run);
    assert.equal(doc.error.code, 2);
    assert.match(doc.error.message, /unknown option '--bogus'/);
  });
  it('a malformed --target is exit 2', () => {
    const run = runCli(['detect', '--target', 'server01']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown --target "server01"/);
  });
  it('an image folder that does not exist is exit 1 naming it', () => {
    const run = runCli(['audit', '--target', 'image:/nonexistent/image']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /server image not found: \/nonexistent\/image/);
  });
  it('--target local off Windows says to use an image, exit 1', async () => {
    const run = await runInProcess(engine, ['audit']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /this machine is not Windows/);
  });
  it('catalog show with an unknown id is exit 2', () => {
    const run = runCli(['catalog', 'show', 'no-such-thing']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown mitigation id "no-such-thing"/);
  });
  it('catalog show finds a mitigation by CVE', async () => {
    const run = await runInProcess(engine, ['catalog', 'show', 'CVE-2022-41082', '--json']);
    assert.equal(run.code, 0);
    const doc = parseJson<{ mitigations: { id: string }[] }>(run);
    assert.deepEqual(doc.mitigations.map((m) => m.id), ['proxynotshell-autodiscover']);
  });
});
