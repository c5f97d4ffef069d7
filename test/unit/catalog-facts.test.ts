// The bundled catalog's facts, checked against what Microsoft published (issue 9): service names as
// Microsoft's own mitigation script and real service exports spell them, severities as Microsoft rates
// each CVE, references only to Microsoft's and CSS-Exchange's own pages, probes labelled for what they are.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';

const catalog = loadBundledCatalog();

/** Hosts whose pages a reference may point to: Microsoft's own sites and CSS-Exchange's. */
const MICROSOFT_HOSTS = new Set(['msrc.microsoft.com', 'support.microsoft.com', 'learn.microsoft.com', 'techcommunity.microsoft.com', 'www.microsoft.com']);

/** Why a reference is not acceptable, or null when it is. */
function referenceProblem(ref: string): string | null {
  let url: URL;
  try {
    url = new URL(ref);
  } catch {
    return 'not a URL';
  }
  if (url.protocol !== 'https:') return 'not https';
  if (url.username !== '' || url.password !== '') return 'carries credentials';
  if (MICROSOFT_HOSTS.has(url.hostname)) return null;
  if (url.hostname === 'microsoft.github.io' && url.pathname.startsWith('/CSS-Exchange/')) return null;
  if (url.hostname === 'github.com' && url.pathname.toLowerCase().startsWith('/microsoft/css-exchange/')) return null;
  return `host ${url.hostname} is not Microsoft's or CSS-Exchange's`;
}

function mitigation(id: string) {
  const m = catalog.mitigations.find((x) => x.id === id);
  assert.ok(m, `no mitigation ${id}`);
  return m;
}

describe('catalog references', () => {
  it('the check refuses http, other hosts and look-alikes', () => {
    assert.match(referenceProblem('http://msrc.microsoft.com/x') ?? '', /not https/);
    assert.match(referenceProblem('https://example.com/x') ?? '', /not Microsoft/);
    assert.match(referenceProblem('https://msrc.microsoft.com.evil.example/x') ?? '', /not Microsoft/);
    assert.match(referenceProblem('https://microsoft.github.io/other/') ?? '', /not Microsoft/);
    assert.match(referenceProblem('https://user:pw@support.microsoft.com/help/1') ?? '', /credentials/);
    assert.equal(referenceProblem('https://microsoft.github.io/CSS-Exchange/Security/EOMT/'), null);
  });
  for (const m of catalog.mitigations) {
    it(`${m.id}: every reference is an https page of Microsoft or CSS-Exchange, and each CVE has its MSRC page`, () => {
      for (const ref of m.references) assert.equal(referenceProblem(ref), null, `${m.id}: ${ref}`);
      for (const cve of m.cves) assert.ok(m.references.includes(`https://msrc.microsoft.com/update-guide/vulnerability/${cve}`), `${m.id}: no MSRC page for ${cve}`);
    });
  }
});

describe('catalog facts', () => {
  it('severities are Microsoft\'s ratings', () => {
    const expected: Record<string, string> = {
      'proxylogon-cookie': 'critical',
      'proxylogon-um-services': 'critical',
      'proxylogon-ecp-apppool': 'critical',
      'proxylogon-oab-apppool': 'critical',
      'proxynotshell-autodiscover': 'important',
      owassrf: 'critical',
      'tokencache-module': 'critical',
      'owa-csp-xss': 'critical',
    };
    assert.deepEqual(Object.fromEntries(catalog.mitigations.map((m) => [m.id, m.severity])), expected);
  });

  it('proxylogon-um-services stops Managed Availability first, then MSExchangeUM and MSExchangeUMCR (no MSExchangeUMCallRouter)', () => {
    const names = mitigation('proxylogon-um-services').actions.map((a) => (a.kind === 'service' ? a.name : a.kind));
    assert.deepEqual(names, ['MSExchangeHM', 'MSExchangeHMRecovery', 'MSExchangeUM', 'MSExchangeUMCR']);
    // The real 2016 service export (test/fixtures/images/e16-*) has exactly these names.
    const services = readFileSync(new URL('../fixtures/images/e16-cu22-nov22su/services.xml', import.meta.url), 'utf8');
    for (const name of names) assert.match(services, new RegExp(`<S N="Name">${name}</S>`));
    assert.doesNotMatch(services, /MSExchangeUMCallRouter/);
  });

  it('owa-csp-xss names the IE / IE-mode gap, the M2 removal order, and Microsoft\'s advisory', () => {
    const m = mitigation('owa-csp-xss');
    assert.match(m.description, /Internet Explorer and Microsoft Edge in IE mode/);
    assert.match(m.description, /EEMS puts it\s+back, or M2 ends up blocked/);
    assert.ok(m.references.some((r) => r.includes('techcommunity.microsoft.com/blog/exchange/addressing-exchange-server-may-2026-vulnerability-cve-2026-42897')));
  });

  it('owassrf says to take Remote PowerShell away from non-admins; tokencache-module says why it lists 2013 and SE', () => {
    assert.match(mitigation('owassrf').description, /Remote PowerShell away from users who are not administrators/);
    assert.match(mitigation('tokencache-module').description, /belong to IIS on Windows, not to Exchange/);
  });

  it('ProxyNotShell: the published request is an attack probe, and every probe says whether it is published or exmit\'s own', () => {
    const m = mitigation('proxynotshell-autodiscover');
    const published = m.probes.find((p) => p.url.startsWith('/autodiscover/autodiscover.json?@zdi/PowerShell?serializationLevel=Full;ExchClientVer=15.2.922.7;clientApplication=ManagementShell;TargetServer=;PSVersion=5.1.17763.592&Email=autodiscover/autodiscover.json%3F@zdi'));
    assert.equal(published?.kind, 'attack');
    assert.match(published?.description ?? '', /^published exploit/);
    const rps = m.probes.find((p) => p.url.includes('X-Rps-CAT'));
    assert.match(rps?.description ?? '', /^a shape exmit adds/);
    for (const p of m.probes.filter((x) => x.kind !== 'ordinary')) assert.match(p.description, /^(published exploit|published bypass|a shape exmit adds)/, p.url);
  });
});
