// The pure planner, with tables: the bundled catalog, detected servers made from facts, and the real
// e19 IIS configuration with rules placed as EEMS, EOMT and admins place them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import { auditServer, type AuditEntry, type Status } from '../../src/audit/plan.ts';
import { createIisJudge } from '../../src/audit/iis-judge.ts';
import { detectServer } from '../../src/exchange/detect.ts';
import { parseConfigXml } from '../../src/iis/config-xml.ts';
import { configKey } from '../../src/iis/sites.ts';
import type { AppPoolFact, ServerFacts, ServiceFact } from '../../src/facts.ts';
import { e19, inApphostLocation, appendToWebConfig, PATHS, type Scenario } from '../fixtures/iis/scenario.ts';

const catalog = loadBundledCatalog();

const PNS_FINAL = `<rewrite><rules><rule name="EEMS M1.1 PowerShell - inbound" stopProcessing="true"><match url=".*" /><conditions><add input="{UrlDecode:{REQUEST_URI}}" pattern="(?=.*autodiscover)(?=.*powershell)" /></conditions><action type="AbortRequest" /></rule></rules></rewrite>`;
const PNS_2022 = `<rewrite><rules><rule name="PowerShell - inbound" stopProcessing="true"><match url=".*" /><conditions><add input="{REQUEST_URI}" pattern=".*autodiscover\\.json.*\\@.*Powershell.*" /></conditions><action type="AbortRequest" /></rule></rules></rewrite>`;
const PL_COOKIE_ONE = `<rewrite><rules><rule name="X-AnonResource-Backend Abort - inbound"><match url=".*" /><conditions><add input="{HTTP_COOKIE}" pattern="(.*)X-AnonResource-Backend(.*)" /></conditions><action type="AbortRequest" /></rule></rules></rewrite>`;
const CSP_M2 = `<rewrite><outboundRules><rule name="EEMS M2.1 OWA CSP - outbound" preCondition="EEMS M2 html"><match serverVariable="RESPONSE_Content_Security_Policy" pattern="(.*)" /><action type="Rewrite" value="{R:1}; script-src-attr 'none'" /></rule><preConditions><preCondition name="EEMS M2 html"><add input="{RESPONSE_CONTENT_TYPE}" pattern="^text/html" /><add input="{REQUEST_URI}" pattern="^/owa/?($|\\?|default\\.aspx|projection\\.aspx|readingPane\\.aspx|popout\\.aspx)" /></preCondition></preConditions></outboundRules></rewrite>`;

interface ServerSpec {
  build: [number, number, number, number];
  fromRegistry?: boolean;
  roles?: string[];
  services?: ServiceFact[] | null;
  appPools?: AppPoolFact[] | null;
  cachtokn?: string | null;
  os?: string | null;
  iis?: Scenario | null;
  blocked?: string[];
}

function svc(name: string, status = 'Running', startType = 'Automatic'): ServiceFact {
  return { name, displayName: name, status, startType };
}

function pool(name: string, state = 'Started', autoStart = true): AppPoolFact {
  return { name, state, autoStart, startMode: 'OnDemand' };
}

function audit(spec: ServerSpec): Map<string, AuditEntry> {
  const [major, minor, b, r] = spec.build;
  const facts: ServerFacts = {
    target: { kind: 'image', path: '/img', computerName: null },
    registry: [
      { name: 'Setup', values: { MsiInstallPath: 'C:\\Program Files\\Microsoft\\Exchange Server\\V15\\', MsiProductMajor: major, MsiProductMinor: minor, MsiBuildMajor: b, MsiBuildMinor: spec.fromRegistry === true ? r : 0 } },
      ...(spec.roles ?? ['MailboxRole', 'AdminTools']).map((name) => ({ name, values: {} })),
    ],
    exsetup: spec.fromRegistry === true ? null : { fileName: 'ExSetup.exe', version: spec.build.join('.') },
    services: spec.services === undefined ? [svc('MSExchangeHM'), svc('MSExchangeIS')] : spec.services,
    cachtokn: spec.cachtokn === null ? null : { fileName: 'cachtokn.dll', version: spec.cachtokn ?? '10.0.17763.0' },
    os: spec.os === null ? null : { caption: 'Windows Server', version: spec.os ?? '10.0.17763', buildNumber: (spec.os ?? '10.0.17763').split('.')[2] ?? '' },
    environment: null,
    appPools: spec.appPools === undefined ? [pool('MSExchangeECPAppPool'), pool('MSExchangeOABAppPool')] : spec.appPools,
    applicationHost: null,
    missing: [],
  };
  const server = detectServer(facts);
  const scenario = spec.iis === undefined ? e19() : spec.iis;
  const judge =
    scenario === null
      ? null
      : createIisJudge({
          apphost: parseConfigXml(scenario.apphost, 'C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config'),
          webConfigs: new Map(Object.entries(scenario.webConfigs).map(([k, v]) => [configKey(k), v])),
          webConfigFiles: new Map(),
          env: {},
        });
  const entries = auditServer(catalog, { server, facts, iis: judge, iisMissing: judge === null ? 'no IIS configuration' : null, blocked: new Set(spec.blocked ?? []) });
  return new Map(entries.map((e) => [e.id, e]));
}

function expectStatus(entries: Map<string, AuditEntry>, id: string, status: Status, reason?: RegExp): AuditEntry {
  const entry = entries.get(id);
  assert.ok(entry, `no entry ${id}`);
  assert.equal(entry.status, status, `${id}: ${entry.reason}`);
  if (reason !== undefined) assert.match(entry.reason, reason);
  return entry;
}

describe('ProxyNotShell on Exchange 2019 CU12 Oct22SU (15.2.1118.15)', () => {
  const build: ServerSpec['build'] = [15, 2, 1118, 15];
  it('no rule: needed, naming the fix and where no rule takes effect', () => {
    expectStatus(audit({ build }), 'proxynotshell-autodiscover', 'needed', /before the fix 15\.2\.1118\.20 \(Exchange 2019 CU12 Nov22SU\).*takes effect at \/autodiscover/);
  });
  it('the EEMS rule in applicationHost.config for Default Web Site: mitigated, temporary, naming the update', () => {
    const e = expectStatus(audit({ build, iis: inApphostLocation(e19(), 'Default Web Site', PNS_FINAL) }), 'proxynotshell-autodiscover', 'mitigated', /"EEMS M1\.1 PowerShell - inbound".*temporary: install Exchange 2019 CU12 Nov22SU \(15\.2\.1118\.20\)/);
    assert.equal(e.stillApplied, true);
  });
  it('the 2022 form: outdated, naming the bypass it lets through', () => {
    const e = expectStatus(audit({ build, iis: inApphostLocation(e19(), 'Default Web Site', PNS_2022) }), 'proxynotshell-autodiscover', 'outdated', /stops the published exploit but not/);
    // The bypasses that get through are listed apart (the human table shows them with --verbose).
    assert.ok(e.bypasses.length >= 3, e.bypasses.join('; '));
    assert.ok(e.bypasses.some((b) => /percent-encoded/.test(b)));
  });
  it('the final rule inside wwwroot\'s inheritInChildApplications="false" location does not reach /Autodiscover: needed', () => {
    const misplaced = appendToWebConfig(e19(), PATHS.wwwroot, `<location inheritInChildApplications="false"><system.webServer>${PNS_FINAL}</system.webServer></location>`);
    expectStatus(audit({ build, iis: misplaced }), 'proxynotshell-autodiscover', 'needed');
  });
  it('the final rule in the wwwroot web.config outside that location (as EEMS writes it): mitigated', () => {
    const placed = appendToWebConfig(e19(), PATHS.wwwroot, `<system.webServer>${PNS_FINAL}</system.webServer>`);
    expectStatus(audit({ build, iis: placed }), 'proxynotshell-autodiscover', 'mitigated');
  });
  it('the final rule only on the Autodiscover virtual directory: outdated (the shape on another path gets through)', () => {
    const autodiscoverOnly = appendToWebConfig(e19(), PATHS.autodiscover, `<system.webServer>${PNS_FINAL}</system.webServer>`);
    expectStatus(audit({ build, iis: autodiscoverOnly }), 'proxynotshell-autodiscover', 'outdated', /another front-end path/);
  });
  it('blocked by the admin: blocked, whatever else is true', () => {
    expectStatus(audit({ build, blocked: ['proxynotshell-autodiscover'] }), 'proxynotshell-autodiscover', 'blocked');
  });
  it('owassrf has no configuration mitigation: patch-only', () => {
    expectStatus(audit({ build }), 'owassrf', 'patch-only', /bypasses every URL Rewrite mitigation of ProxyNotShell: only the November 2022 security update helps/);
  });
});

describe('fixed builds', () => {
  it('Nov22SU with the EEMS rule still in place: fixed, stillApplied', () => {
    const e = expectStatus(audit({ build: [15, 2, 1118, 20], iis: inApphostLocation(e19(), 'Default Web Site', PNS_FINAL) }), 'proxynotshell-autodiscover', 'fixed');
    assert.equal(e.stillApplied, true);
  });
  it('Nov22SU without rules: fixed, nothing applied', () => {
    const e = expectStatus(audit({ build: [15, 2, 1118, 20] }), 'proxynotshell-autodiscover', 'fixed');
    assert.equal(e.stillApplied, false);
  });
  it('registry-only CU12 build: SU level unknown, judged vulnerable', () => {
    expectStatus(audit({ build: [15, 2, 1118, 7], fromRegistry: true }), 'proxynotshell-autodiscover', 'needed', /SU level unknown/);
  });
  it('a CU newer than the build list knows counts as fixed', () => {
    expectStatus(audit({ build: [15, 1, 2600, 5] }), 'proxynotshell-autodiscover', 'fixed', /newer than the catalog knows/i);
  });
});

describe('ProxyLogon on Exchange 2016 CU19 before the March 2021 SU (15.1.2176.2)', () => {
  const build: ServerSpec['build'] = [15, 1, 2176, 2];
  const um = [svc('MSExchangeUM'), svc('MSExchangeUMCR'), svc('MSExchangeHM'), svc('MSExchangeHMRecovery')];
  it('UM services running: needed', () => {
    expectStatus(audit({ build, services: um }), 'proxylogon-um-services', 'needed', /before the fix 15\.1\.2176\.9/);
  });
  it('both UM services stopped and disabled: mitigated', () => {
    const off = [svc('MSExchangeUM', 'Stopped', 'Disabled'), svc('MSExchangeUMCR', 'Stopped', 'Disabled')];
    expectStatus(audit({ build, services: off }), 'proxylogon-um-services', 'mitigated');
  });
  it('one of two stopped: partial', () => {
    const half = [svc('MSExchangeUM', 'Stopped', 'Disabled'), svc('MSExchangeUMCR')];
    expectStatus(audit({ build, services: half }), 'proxylogon-um-services', 'partial');
  });
  it('no services export: errs on the side of caution and names what is missing', () => {
    expectStatus(audit({ build, services: null }), 'proxylogon-um-services', 'needed', /services\.xml missing/);
  });
  it('ECP app pool started: needed; no app pool export: needed naming apppools.xml', () => {
    expectStatus(audit({ build, services: um }), 'proxylogon-ecp-apppool', 'needed');
    expectStatus(audit({ build, services: um, appPools: null }), 'proxylogon-ecp-apppool', 'needed', /apppools\.xml missing/);
  });
  it('one of the two ProxyLogon cookie rules: partial', () => {
    expectStatus(audit({ build, iis: inApphostLocation(e19(), 'Default Web Site', PL_COOKIE_ONE) }), 'proxylogon-cookie', 'partial');
  });
  it('Exchange 2019 CU8 has no UM services: patch-only', () => {
    expectStatus(audit({ build: [15, 2, 792, 3] }), 'proxylogon-um-services', 'patch-only');
  });
});

describe('OWA CSP (CVE-2026-42897)', () => {
  it('2019 CU14 before June 2026: needed; the unpublished EEMS M2 rule in /owa counts as mitigated', () => {
    expectStatus(audit({ build: [15, 2, 1544, 37] }), 'owa-csp-xss', 'needed');
    expectStatus(audit({ build: [15, 2, 1544, 37], iis: inApphostLocation(e19(), 'Default Web Site/owa', CSP_M2) }), 'owa-csp-xss', 'mitigated');
  });
  it('June 2026 SU: fixed, but keep the rule until the July SU', () => {
    expectStatus(audit({ build: [15, 2, 1544, 41], iis: inApphostLocation(e19(), 'Default Web Site/owa', CSP_M2) }), 'owa-csp-xss', 'fixed', /remove the rule only after installing/);
  });
  it('June 2026 SU without any rule: fixed, and no rule that is not there is mentioned', () => {
    const e = expectStatus(audit({ build: [15, 2, 1544, 41] }), 'owa-csp-xss', 'fixed');
    assert.doesNotMatch(e.reason, /rule/);
  });
  it('Exchange 2013: not applicable, saying Microsoft did not evaluate it', () => {
    expectStatus(audit({ build: [15, 0, 1497, 48], roles: ['MailboxRole', 'ClientAccessRole', 'AdminTools'] }), 'owa-csp-xss', 'not-applicable', /evaluat/);
  });
});

describe('the IIS token cache module (decided by Windows)', () => {
  it('unpatched cachtokn.dll with the module loaded: needed', () => {
    expectStatus(audit({ build: [15, 2, 1544, 41] }), 'tokencache-module', 'needed', /10\.0\.17763\.4968/);
  });
  it('patched cachtokn.dll: fixed', () => {
    expectStatus(audit({ build: [15, 2, 1544, 41], cachtokn: '10.0.17763.4968' }), 'tokencache-module', 'fixed');
  });
  it('no cachtokn export: errs on the side of caution naming what is missing', () => {
    expectStatus(audit({ build: [15, 2, 1544, 41], cachtokn: null }), 'tokencache-module', 'needed', /cachtokn/);
  });
  it('module already removed on a vulnerable Windows: mitigated, whoever removed it', () => {
    const scenario = e19();
    const removed = { ...scenario, apphost: scenario.apphost.replace(/<add name="TokenCacheModule"[^>]*\/>/, '') };
    expectStatus(audit({ build: [15, 2, 1544, 41], iis: removed }), 'tokencache-module', 'mitigated');
  });
});

describe('servers without Exchange web services', () => {
  it('Edge Transport: every IIS mitigation not applicable', () => {
    const entries = audit({ build: [15, 2, 1118, 15], roles: ['EdgeTransportRole', 'AdminTools'], iis: null });
    for (const id of ['proxynotshell-autodiscover', 'proxylogon-cookie', 'owa-csp-xss', 'tokencache-module']) expectStatus(entries, id, 'not-applicable', /Edge Transport/);
  });
  it('management tools only: not applicable', () => {
    const entries = audit({ build: [15, 2, 1118, 15], roles: ['AdminTools'], iis: null });
    expectStatus(entries, 'proxynotshell-autodiscover', 'not-applicable', /management tools only/);
  });
});
