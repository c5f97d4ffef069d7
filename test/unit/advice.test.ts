// "Do this now", planned from real builds, the bundled catalog and the real e19 IIS configuration:
// the right update first with its build and KB, the CU move that really fixes the rest, the exact
// apply commands, EEMS not doing its job, the support state.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import { auditServer } from '../../src/audit/plan.ts';
import { adviseServer, type Advice } from '../../src/audit/advice.ts';
import { createIisJudge } from '../../src/audit/iis-judge.ts';
import { detectServer } from '../../src/exchange/detect.ts';
import { parseConfigXml } from '../../src/iis/config-xml.ts';
import { configKey } from '../../src/iis/sites.ts';
import type { ServerFacts, ServiceFact } from '../../src/facts.ts';
import { e19, inApphostLocation } from '../fixtures/iis/scenario.ts';

const catalog = loadBundledCatalog();
const PNS_FINAL = `<rewrite><rules><rule name="EEMS M1.1 PowerShell - inbound" stopProcessing="true"><match url=".*" /><conditions><add input="{UrlDecode:{REQUEST_URI}}" pattern="(?=.*autodiscover)(?=.*powershell)" /></conditions><action type="AbortRequest" /></rule></rules></rewrite>`;

function svc(name: string, status = 'Running', startType = 'Automatic'): ServiceFact {
  return { name, displayName: name, status, startType };
}

function advise(build: string, opts: { cachtokn?: string; services?: ServiceFact[]; roles?: string[]; os?: string; iis?: ReturnType<typeof e19>; targetArg?: string | null; rewriteModule?: boolean | null } = {}): Advice[] {
  const facts: ServerFacts = {
    target: { kind: 'image', path: '/img', computerName: null },
    registry: [{ name: 'Setup', values: { MsiProductMajor: 15, MsiProductMinor: 0, MsiBuildMajor: 0, MsiBuildMinor: 0 } }, ...(opts.roles ?? ['MailboxRole', 'AdminTools']).map((name) => ({ name, values: {} }))],
    exsetup: { fileName: 'ExSetup.exe', version: build },
    services: opts.services ?? [svc('MSExchangeHM'), svc('MSExchangeMitigation')],
    cachtokn: { fileName: 'cachtokn.dll', version: opts.cachtokn ?? '10.0.17763.4968' },
    os: { caption: 'Windows Server', version: opts.os ?? '10.0.17763', buildNumber: (opts.os ?? '10.0.17763').split('.')[2] ?? '' },
    environment: null,
    appPools: [{ name: 'MSExchangeECPAppPool', state: 'Started', autoStart: true, startMode: 'OnDemand' }],
    applicationHost: null,
    missing: [],
  };
  const server = detectServer(facts);
  const scenario = opts.iis ?? e19();
  const judge = createIisJudge({
    apphost: parseConfigXml(scenario.apphost, 'C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config'),
    webConfigs: new Map(Object.entries(scenario.webConfigs).map(([k, v]) => [configKey(k), v])),
    webConfigFiles: new Map(),
    env: {},
  });
  const entries = auditServer(catalog, { server, facts, iis: judge, iisMissing: null, blocked: new Set() });
  return adviseServer(server, entries, catalog, { targetArg: opts.targetArg ?? null, rewriteModule: opts.rewriteModule ?? null });
}

const kinds = (a: Advice[]) => a.map((x) => x.kind);

describe('advice on Exchange 2019 CU12 Oct22SU (15.2.1118.15), EEMS running, Windows unpatched', () => {
  const advice = advise('15.2.1118.15', { cachtokn: '10.0.17763.0', targetArg: '--target image:/srv/img' });
  it('in order: apply, update, cu, windows, eems, compromise', () => {
    assert.deepEqual(kinds(advice), ['apply', 'update', 'cu', 'windows', 'eems', 'compromise']);
  });
  it('the apply command is exact, with the target', () => {
    assert.equal(advice[0]?.command, 'exmit apply --needed --target image:/srv/img');
    assert.deepEqual(advice[0]?.ids, ['proxynotshell-autodiscover', 'tokencache-module', 'owa-csp-xss']);
  });
  it('first the newest update of CU12: Nov23SU 15.2.1118.40 with its KB, fixing ProxyNotShell and OWASSRF', () => {
    const u = advice.find((a) => a.kind === 'update');
    assert.deepEqual({ name: u?.name, build: u?.build, kb: u?.kb, fixes: u?.fixes }, { name: 'Exchange 2019 CU12 Nov23SU', build: '15.2.1118.40', kb: 'KB5032146', fixes: ['proxynotshell-autodiscover', 'owassrf'] });
  });
  it('then the CU move names a build that really fixes the rest (not CU15 RTM, which is before the owa-csp-xss fix)', () => {
    const c = advice.find((a) => a.kind === 'cu');
    assert.equal(c?.build, '15.2.1748.49');
    assert.equal(c?.name, 'Exchange 2019 CU15 Aug26SU');
    assert.deepEqual(c?.fixes, ['owa-csp-xss']);
    assert.match(c?.text ?? '', /move to a supported CU \(CU12 gets no more updates\)/);
  });
  it('EEMS running without its M1 in effect: says so and how to check', () => {
    const e = advice.find((a) => a.kind === 'eems');
    assert.deepEqual(e?.fixes, ['proxynotshell-autodiscover']);
    assert.match(e?.text ?? '', /not doing its job/);
    assert.match(e?.command ?? '', /MitigationsBlocked/);
  });
});

describe('advice elsewhere', () => {
  it('EEMS rule in place on CU12 Oct22SU: no EEMS line, nothing to apply for ProxyNotShell', () => {
    const advice = advise('15.2.1118.15', { iis: inApphostLocation(e19(), 'Default Web Site', PNS_FINAL) });
    assert.equal(advice.some((a) => a.kind === 'eems'), false);
    assert.deepEqual(advice.find((a) => a.kind === 'apply')?.ids, ['owa-csp-xss']);
  });
  it('a current, fully patched 2019 CU15 Aug26SU: no advice at all', () => {
    assert.deepEqual(advise('15.2.1748.49'), []);
  });
  it('2019 CU14 Jun26SU: the newest update of CU14 (Aug26SU), fixing nothing in the catalog; no CU move', () => {
    const advice = advise('15.2.1544.41');
    assert.deepEqual(kinds(advice), ['update']);
    assert.equal(advice[0]?.build, '15.2.1544.44');
    assert.deepEqual(advice[0]?.fixes, []);
  });
  it('2016 CU22 Nov22SU: no newer update for CU22, so the move to CU23 comes first after apply', () => {
    const advice = advise('15.1.2375.37', { os: '10.0.14393', cachtokn: '10.0.14393.6343' });
    assert.deepEqual(kinds(advice), ['apply', 'cu', 'compromise']);
    const c = advice[1];
    assert.equal(c?.build, '15.1.2507.72');
    assert.match(c?.text ?? '', /^Move to a supported CU/);
  });
  it('breaking mitigations are named apart, with --allow-breaking', () => {
    const advice = advise('15.1.2176.2', { os: '10.0.14393', cachtokn: '10.0.14393.6343', services: [svc('MSExchangeHM'), svc('MSExchangeHMRecovery'), svc('MSExchangeUM'), svc('MSExchangeUMCR')] });
    const apply = advice.filter((a) => a.kind === 'apply');
    assert.equal(apply[0]?.command, 'exmit apply --needed');
    assert.equal(apply[1]?.command, 'exmit apply --needed --allow-breaking');
    assert.ok(apply[1]?.ids?.includes('proxylogon-um-services'));
    assert.equal(apply[0]?.ids?.includes('proxylogon-um-services'), false);
    assert.match(apply[1]?.text ?? '', /proxylogon-um-services stops Unified Messaging/);
  });
  it('Exchange 2013 with everything fixed: the support line says to move to a version that still gets updates', () => {
    const advice = advise('15.0.1497.48', { os: '6.3.9600', cachtokn: '8.5.9600.21613', roles: ['MailboxRole', 'ClientAccessRole', 'AdminTools'] });
    assert.deepEqual(kinds(advice), ['support', 'compromise']);
    assert.match(advice[0]?.text ?? '', /Exchange 2013 has had no security update since 2023-03-14.*Move to a version that still gets updates \(Exchange SE\)/s);
  });
});

describe('advice on a server without IIS URL Rewrite (exmit apply refuses rules there)', () => {
  const build = '15.2.1118.15';
  const opts = { cachtokn: '10.0.17763.0', targetArg: '--target image:/srv/img' };
  const without = advise(build, { ...opts, rewriteModule: false });
  it('first what can be applied now, named one by one (--needed would take in the rules and be refused)', () => {
    assert.equal(without[0]?.kind, 'apply');
    assert.equal(without[0]?.command, 'exmit apply tokencache-module --target image:/srv/img');
    assert.deepEqual(without[0]?.ids, ['tokencache-module']);
  });
  it('then installing URL Rewrite, naming the rules that wait for it and the command to run after', () => {
    const rewrite = without[1];
    assert.equal(rewrite?.kind, 'apply');
    assert.deepEqual(rewrite?.ids, ['proxynotshell-autodiscover', 'owa-csp-xss']);
    assert.equal(rewrite?.command, 'exmit apply --needed --target image:/srv/img');
    assert.match(rewrite?.text ?? '', /^Install IIS URL Rewrite 2\.1 \(https:\/\/www\.iis\.net\/downloads\/microsoft\/url-rewrite\): proxynotshell-autodiscover and owa-csp-xss are URL Rewrite rules, which IIS cannot run without it/);
    assert.deepEqual(kinds(without), ['apply', 'apply', 'update', 'cu', 'windows', 'eems', 'compromise']);
  });
  it('with URL Rewrite, or not known, the advice is the usual --needed', () => {
    for (const rewriteModule of [true, null]) {
      const advice = advise(build, { ...opts, rewriteModule });
      assert.equal(advice[0]?.command, 'exmit apply --needed --target image:/srv/img');
      assert.deepEqual(advice[0]?.ids, ['proxynotshell-autodiscover', 'tokencache-module', 'owa-csp-xss']);
      assert.equal(advice.filter((a) => a.kind === 'apply').length, 1);
    }
  });
});
