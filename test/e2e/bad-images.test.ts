// Bad and hostile server images: exit 1, one clear line naming the file, no stack trace, and the
// same through --json. Also the servers across 2013..SE, Edge and tools-only, UTF-8 and mixed case.
// In-process against one engine for the file (support/in-process.ts); one bad image also through the
// built CLI, so the process's own output is checked too.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, openSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runCli, image, parseJson, hasStackTrace } from '../support/cli.ts';
import { runInProcess, sharedEngine } from '../support/in-process.ts';

const engine = sharedEngine();

const badCases: { image: string; message: RegExp }[] = [
  { image: 'bad/missing-registry', message: /registry\.xml/ },
  { image: 'bad/registry-not-xml', message: /registry\.xml/ },
  { image: 'bad/registry-no-setup-key', message: /registry\.xml.*Setup/ },
  { image: 'bad/exsetup-garbage', message: /exsetup\.xml/ },
  { image: 'bad/hostile-entity', message: /registry\.xml/ },
  { image: 'bad/apphost-not-well-formed', message: /applicationHost\.config line \d+: not well-formed/ },
  { image: 'bad/webconfig-not-well-formed', message: /wwwroot\\web\.config line \d+: not well-formed/ },
  { image: 'bad/missing-apphost-on-mailbox', message: /applicationHost\.config is missing/ },
];

describe('bad images', () => {
  for (const c of badCases) {
    it(`${c.image}: exit 1, one line naming the file`, async () => {
      const run = await runInProcess(engine, ['audit', '--target', `image:${image(c.image)}`]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      const first = run.stderr.split('\n')[0] ?? '';
      assert.match(first, /^exmit: /);
      assert.match(first, c.message);
      assert.equal(hasStackTrace(run.stderr), false, run.stderr);
      assert.equal(run.stdout, '');
      const json = await runInProcess(engine, ['audit', '--json', '--target', `image:${image(c.image)}`]);
      assert.equal(json.code, 1);
      const doc = parseJson<{ error: { code: number; message: string } }>(json);
      assert.equal(doc.error.code, 1);
      assert.match(doc.error.message, c.message);
    });
  }

  it('through the built CLI: exit 1, one line naming the file, nothing on stdout', () => {
    const run = runCli(['audit', '--target', `image:${image('bad/registry-not-xml')}`]);
    assert.equal(run.code, 1, run.stdout + run.stderr);
    assert.match(run.stderr.split('\n')[0] ?? '', /^exmit: .*registry\.xml/);
    assert.equal(hasStackTrace(run.stderr), false, run.stderr);
    assert.equal(run.stdout, '');
  });

  describe('an oversize export', () => {
    let dir = '';
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'exmit-oversize-'));
      cpSync(image('examples/e19-cu12-oct22su'), dir, { recursive: true });
      // 100 MB of a well-formed-looking start: the size limit must refuse it before parsing.
      const fd = openSync(path.join(dir, 'services.xml'), 'w');
      writeSync(fd, '<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">');
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      for (let i = 0; i < 100; i++) writeSync(fd, chunk);
      writeSync(fd, '</Objs>');
      closeSync(fd);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));
    it('is refused by name, exit 1', async () => {
      const run = await runInProcess(engine, ['audit', '--target', `image:${dir}`]);
      assert.equal(run.code, 1);
      assert.match(run.stderr.split('\n')[0] ?? '', /services\.xml/);
      assert.match(run.stderr, /limit/);
    });
  });

  describe('an empty web.config', () => {
    let dir = '';
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'exmit-empty-'));
      cpSync(image('examples/e19-cu12-oct22su'), dir, { recursive: true });
      // IIS answers HTTP 500.19 for an empty configuration file: it is not "no configuration here".
      closeSync(openSync(path.join(dir, 'fs', 'C', 'inetpub', 'wwwroot', 'web.config'), 'w'));
    });
    after(() => rmSync(dir, { recursive: true, force: true }));
    it('is an error naming the file and saying it is empty, exit 1', async () => {
      const run = await runInProcess(engine, ['audit', '--target', `image:${dir}`]);
      assert.equal(run.code, 1, run.stdout + run.stderr);
      assert.match(run.stderr.split('\n')[0] ?? '', /^exmit: C:\\inetpub\\wwwroot\\web\.config: the file is empty/);
      assert.equal(run.stdout, '');
    });
  });
});

interface DetectDoc {
  product: string;
  name: string;
  build: string;
  roles: string[];
  buildSource: string;
  suLevelKnown: boolean;
  eems: { present: boolean | null };
}

const servers: { image: string; product: string; name: string; roles: string[]; buildSource: string; audit: Record<string, string>; code: number }[] = [
  {
    image: 'e15-cu23-mar23su',
    product: 'Exchange Server 2013',
    name: 'Exchange 2013 CU23 Mar23SU',
    roles: ['Mailbox', 'ClientAccess', 'ManagementTools'],
    buildSource: 'exsetup',
    audit: { 'proxynotshell-autodiscover': 'fixed', 'owa-csp-xss': 'not-applicable', 'proxylogon-cookie': 'fixed' },
    code: 3,
  },
  {
    image: 'e16-cu22-nov22su',
    product: 'Exchange Server 2016',
    name: 'Exchange 2016 CU22 Nov22SU',
    roles: ['Mailbox', 'ClientAccess', 'ManagementTools'],
    buildSource: 'exsetup',
    audit: { 'proxynotshell-autodiscover': 'fixed', owassrf: 'fixed', 'owa-csp-xss': 'needed' },
    code: 3,
  },
  {
    image: 'se-rtm-jun26su',
    product: 'Exchange Server Subscription Edition',
    name: 'Exchange SE RTM Jun26SU',
    roles: ['Mailbox', 'ClientAccess', 'ManagementTools'],
    buildSource: 'exsetup',
    audit: { 'proxynotshell-autodiscover': 'fixed', 'owa-csp-xss': 'fixed', 'proxylogon-cookie': 'fixed' },
    code: 0,
  },
  {
    image: 'e19-edge',
    product: 'Exchange Server 2019',
    name: 'Exchange 2019 CU12 Oct22SU',
    roles: ['EdgeTransport', 'ManagementTools'],
    buildSource: 'exsetup',
    audit: { 'proxynotshell-autodiscover': 'not-applicable', 'tokencache-module': 'not-applicable', 'owa-csp-xss': 'not-applicable' },
    // Exit 3 since issue 9: CU12 gets no more updates (support cu-behind), whatever the catalog says.
    code: 3,
  },
  {
    image: 'e19-mgmt-tools',
    product: 'Exchange Server 2019',
    name: 'Exchange 2019 CU12 Oct22SU',
    roles: ['ManagementTools'],
    buildSource: 'exsetup',
    audit: { 'proxynotshell-autodiscover': 'not-applicable', 'proxylogon-cookie': 'not-applicable' },
    // Exit 3 since issue 9: CU12 gets no more updates (support cu-behind).
    code: 3,
  },
  {
    image: 'e19-utf8',
    product: 'Exchange Server 2019',
    name: 'Exchange 2019 CU12 Oct22SU',
    roles: ['Mailbox', 'ClientAccess', 'ManagementTools'],
    buildSource: 'exsetup',
    audit: { 'proxynotshell-autodiscover': 'needed', 'tokencache-module': 'needed', 'owa-csp-xss': 'needed' },
    code: 3,
  },
  {
    image: 'e19-cu14-registry-only',
    product: 'Exchange Server 2019',
    name: 'Exchange 2019 CU14',
    roles: ['Mailbox', 'ClientAccess', 'ManagementTools'],
    buildSource: 'registry',
    audit: { 'owa-csp-xss': 'needed', 'proxynotshell-autodiscover': 'fixed' },
    code: 3,
  },
];

describe('servers across products and roles', () => {
  for (const s of servers) {
    it(`${s.image}: detect ${s.name}; audit exit ${s.code}`, async () => {
      const run = await runInProcess(engine, ['detect', '--json', '--target', `image:${image(s.image)}`]);
      assert.equal(run.code, 0, run.stderr);
      const doc = parseJson<DetectDoc>(run);
      assert.equal(doc.product, s.product);
      assert.equal(doc.name, s.name);
      assert.deepEqual(doc.roles, s.roles);
      assert.equal(doc.buildSource, s.buildSource);
      assert.equal(doc.suLevelKnown, s.buildSource === 'exsetup');
      const audit = await runInProcess(engine, ['audit', '--json', '--target', `image:${image(s.image)}`]);
      assert.equal(audit.code, s.code, audit.stdout.slice(0, 2000));
      const report = parseJson<{ mitigations: { id: string; status: string; reason: string }[] }>(audit);
      for (const [id, status] of Object.entries(s.audit)) {
        const m = report.mitigations.find((x) => x.id === id);
        assert.equal(m?.status, status, `${id}: ${m?.reason}`);
      }
    });
  }

  it('a registry-only build says the SU level is unknown', async () => {
    const audit = await runInProcess(engine, ['audit', '--json', '--target', `image:${image('e19-cu14-registry-only')}`]);
    const report = parseJson<{ mitigations: { id: string; reason: string }[] }>(audit);
    assert.match(report.mitigations.find((m) => m.id === 'owa-csp-xss')?.reason ?? '', /SU level unknown/);
  });
});
