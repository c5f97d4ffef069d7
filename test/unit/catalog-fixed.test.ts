import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fixState, windowsFixState } from '../../src/catalog/fixed.ts';
import type { FixState } from '../../src/catalog/fixed.ts';
import { findMitigation, loadBundledCatalog, parseCatalog } from '../../src/catalog/parse.ts';
import type { Mitigation, Product } from '../../src/catalog/types.ts';

const catalog = loadBundledCatalog();

function mitigation(id: string): Mitigation {
  const found = findMitigation(catalog, id)[0];
  assert.ok(found !== undefined, `no ${id} in the bundled catalog`);
  return found;
}

interface Row {
  id: string;
  product: Product;
  build: string;
  state: FixState['state'];
  /** The reason must contain this. */
  reason: string;
  fixedBuild?: string | null;
  update?: string | null;
}

const NO_UPDATE = 'never received the fix: no update exists for this CU; move to a supported CU';

const ROWS: Row[] = [
  // ProxyNotShell: CU11/CU12 got the November 2022 SU, CU13 shipped with it, SE is fixed.
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.1118.15', state: 'vulnerable', reason: 'build 15.2.1118.15 is before the fix 15.2.1118.20 (Exchange 2019 CU12 Nov22SU)', fixedBuild: '15.2.1118.20', update: 'Exchange 2019 CU12 Nov22SU' },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.1118.7', state: 'vulnerable', reason: 'before the fix 15.2.1118.20', fixedBuild: '15.2.1118.20' },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.1118.20', state: 'fixed', reason: 'build 15.2.1118.20 has the fix (Exchange 2019 CU12 Nov22SU, 15.2.1118.20)', fixedBuild: '15.2.1118.20', update: 'Exchange 2019 CU12 Nov22SU' },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.02.1118.040', state: 'fixed', reason: 'build 15.2.1118.40 has the fix' },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.986.30', state: 'vulnerable', reason: 'before the fix 15.2.986.36 (Exchange 2019 CU11 Nov22SU)' },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.986.36', state: 'fixed', reason: 'has the fix' },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.922.27', state: 'vulnerable', reason: `Exchange 2019 CU10 ${NO_UPDATE}`, fixedBuild: null, update: null },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.221.12', state: 'vulnerable', reason: `Exchange 2019 RTM ${NO_UPDATE}` },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.1258.12', state: 'fixed', reason: '15.2.1258.12 (CU13) shipped with the fix', fixedBuild: '15.2.1258.12', update: null },
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.2.1748.10', state: 'fixed', reason: 'build 15.2.1748.10 is in a CU after CU13 (15.2.1258.12), which shipped with the fix' },
  { id: 'proxynotshell-autodiscover', product: '2016', build: '15.1.2507.13', state: 'vulnerable', reason: 'before the fix 15.1.2507.16 (Exchange 2016 CU23 Nov22SU)' },
  { id: 'proxynotshell-autodiscover', product: '2016', build: '15.1.2507.72', state: 'fixed', reason: 'has the fix' },
  { id: 'proxynotshell-autodiscover', product: '2016', build: '15.1.2375.37', state: 'fixed', reason: 'has the fix (Exchange 2016 CU22 Nov22SU' },
  { id: 'proxynotshell-autodiscover', product: '2016', build: '15.1.2308.27', state: 'vulnerable', reason: `Exchange 2016 CU21 ${NO_UPDATE}` },
  { id: 'proxynotshell-autodiscover', product: '2013', build: '15.0.1497.42', state: 'vulnerable', reason: 'before the fix 15.0.1497.44 (Exchange 2013 CU23 Nov22SU)' },
  { id: 'proxynotshell-autodiscover', product: '2013', build: '15.0.1497.48', state: 'fixed', reason: 'has the fix' },
  { id: 'proxynotshell-autodiscover', product: '2013', build: '15.0.1473.6', state: 'vulnerable', reason: `Exchange 2013 CU22 ${NO_UPDATE}` },
  { id: 'proxynotshell-autodiscover', product: 'SE', build: '15.2.2562.17', state: 'fixed', reason: 'every Exchange SE build has the fix', fixedBuild: null, update: null },
  { id: 'owassrf', product: '2019', build: '15.2.1118.12', state: 'vulnerable', reason: 'before the fix 15.2.1118.20' },
  // ProxyLogon: the March 2021 SU for many CUs, fixed from 2016 CU20 and 2019 CU9.
  { id: 'proxylogon-cookie', product: '2013', build: '15.0.847.32', state: 'vulnerable', reason: 'before the fix 15.0.847.64 (Exchange 2013 SP1 Mar21SU)' },
  { id: 'proxylogon-cookie', product: '2013', build: '15.0.847.64', state: 'fixed', reason: 'has the fix' },
  { id: 'proxylogon-cookie', product: '2013', build: '15.0.1367.3', state: 'vulnerable', reason: `Exchange 2013 CU20 ${NO_UPDATE}` },
  { id: 'proxylogon-cookie', product: '2013', build: '15.0.1497.2', state: 'vulnerable', reason: 'before the fix 15.0.1497.12 (Exchange 2013 CU23 Mar21SU)' },
  { id: 'proxylogon-cookie', product: '2013', build: '15.0.1497.44', state: 'fixed', reason: 'has the fix' },
  { id: 'proxylogon-cookie', product: '2016', build: '15.1.1261.35', state: 'vulnerable', reason: `Exchange 2016 CU7 ${NO_UPDATE}` },
  { id: 'proxylogon-cookie', product: '2016', build: '15.1.1415.2', state: 'vulnerable', reason: 'before the fix 15.1.1415.10 (Exchange 2016 CU8 Mar21SU)' },
  { id: 'proxylogon-cookie', product: '2016', build: '15.1.2176.2', state: 'vulnerable', reason: 'before the fix 15.1.2176.9 (Exchange 2016 CU19 Mar21SU)' },
  { id: 'proxylogon-cookie', product: '2016', build: '15.1.2176.14', state: 'fixed', reason: 'has the fix' },
  { id: 'proxylogon-cookie', product: '2016', build: '15.1.2242.4', state: 'fixed', reason: '15.1.2242.4 (CU20) shipped with the fix' },
  { id: 'proxylogon-cookie', product: '2016', build: '15.1.2507.6', state: 'fixed', reason: 'in a CU after CU20' },
  { id: 'proxylogon-um-services', product: '2019', build: '15.2.221.12', state: 'vulnerable', reason: 'before the fix 15.2.221.18 (Exchange 2019 RTM Mar21SU)' },
  { id: 'proxylogon-ecp-apppool', product: '2019', build: '15.2.792.3', state: 'vulnerable', reason: 'before the fix 15.2.792.10 (Exchange 2019 CU8 Mar21SU)' },
  { id: 'proxylogon-oab-apppool', product: '2019', build: '15.2.858.5', state: 'fixed', reason: '15.2.858.5 (CU9) shipped with the fix' },
  { id: 'proxylogon-oab-apppool', product: 'SE', build: '15.2.2562.46', state: 'fixed', reason: 'every Exchange SE build has the fix' },
  // OWA CSP: June 2026 SU for the supported CUs only; a CU newer than the build list counts as fixed.
  { id: 'owa-csp-xss', product: '2016', build: '15.1.2507.66', state: 'vulnerable', reason: 'before the fix 15.1.2507.69 (Exchange 2016 CU23 Jun26SU)' },
  { id: 'owa-csp-xss', product: '2016', build: '15.1.2507.69', state: 'fixed', reason: 'has the fix' },
  { id: 'owa-csp-xss', product: '2016', build: '15.1.2375.37', state: 'vulnerable', reason: `Exchange 2016 CU22 ${NO_UPDATE}` },
  { id: 'owa-csp-xss', product: '2019', build: '15.2.1544.39', state: 'vulnerable', reason: 'before the fix 15.2.1544.41 (Exchange 2019 CU14 Jun26SU)' },
  { id: 'owa-csp-xss', product: '2019', build: '15.2.1748.46', state: 'fixed', reason: 'has the fix (Exchange 2019 CU15 Jun26SU, 15.2.1748.46)' },
  { id: 'owa-csp-xss', product: '2019', build: '15.2.1258.39', state: 'vulnerable', reason: `Exchange 2019 CU13 ${NO_UPDATE}` },
  { id: 'owa-csp-xss', product: 'SE', build: '15.2.2562.41', state: 'vulnerable', reason: 'before the fix 15.2.2562.43 (Exchange SE RTM Jun26SU)' },
  { id: 'owa-csp-xss', product: 'SE', build: '15.2.2562.45', state: 'fixed', reason: 'has the fix' },
  { id: 'owa-csp-xss', product: 'SE', build: '15.2.2700.5', state: 'unknown-newer', reason: 'newer than the catalog knows', fixedBuild: null, update: null },
  { id: 'owa-csp-xss', product: '2019', build: '15.2.1900.5', state: 'unknown-newer', reason: 'newer than the catalog knows' },
  { id: 'owa-csp-xss', product: '2016', build: '15.1.2600.3', state: 'unknown-newer', reason: 'newer than the catalog knows' },
  // Builds that do not belong to the product are judged with caution.
  { id: 'proxynotshell-autodiscover', product: '2019', build: '15.1.2507.16', state: 'vulnerable', reason: 'build 15.1.2507.16 is not an Exchange 2019 build' },
];

describe('fixState: the per-CU model on the bundled catalog', () => {
  for (const row of ROWS) {
    it(`${row.id} on ${row.product} ${row.build}: ${row.state}`, () => {
      const result = fixState(mitigation(row.id), row.product, row.build);
      assert.equal(result.state, row.state, result.reason);
      assert.ok(result.reason.includes(row.reason), `reason "${result.reason}" should contain "${row.reason}"`);
      if (row.fixedBuild !== undefined) assert.equal(result.fixedBuild, row.fixedBuild);
      if (row.update !== undefined) assert.equal(result.update, row.update);
    });
  }

  it('accepts a parsed build as well as text', () => {
    assert.equal(fixState(mitigation('proxynotshell-autodiscover'), '2019', [15, 2, 1118, 20]).state, 'fixed');
  });

  it('rejects text that is not a build', () => {
    assert.throws(() => fixState(mitigation('proxynotshell-autodiscover'), '2019', '15.2.1118'), /not an Exchange build number/);
  });

  it('refuses a mitigation that Windows fixes', () => {
    assert.throws(() => fixState(mitigation('tokencache-module'), '2019', '15.2.1118.20'), /use windowsFixState/);
  });

  it('a CU newer than the list but below a listed fix is not counted as fixed', () => {
    const zeroDay = parseCatalog(catalogWith('<update cu="CU20" build="15.2.3000.10" label="Jan27SU"/>'), 't.xml').mitigations[0];
    assert.ok(zeroDay !== undefined);
    const result = fixState(zeroDay, 'SE', '15.2.2900.4');
    assert.equal(result.state, 'vulnerable');
    assert.match(result.reason, /the CU of build 15\.2\.2900\.4 \(not in the build list\) never received the fix/);
  });

  it('with no fix released yet, every build is vulnerable, newer ones too', () => {
    const zeroDay = parseCatalog(catalogWith(''), 't.xml').mitigations[0];
    assert.ok(zeroDay !== undefined);
    for (const build of ['15.2.2562.46', '15.2.2900.4']) {
      const result = fixState(zeroDay, 'SE', build);
      assert.equal(result.state, 'vulnerable');
      assert.match(result.reason, /no update with the fix exists yet for Exchange SE/);
    }
  });
});

/** A one-mitigation catalog whose SE fix holds the given children. */
function catalogWith(seFix: string): string {
  return `<catalog xmlns="urn:exmit:catalog:1" serial="2026010101" published="2026-01-01" expires="2028-01-01" requires="*">
  <mitigation id="z" severity="critical">
    <title>Z</title><cve>CVE-2027-0001</cve><description>D</description><reference>https://example.com/z</reference>
    <appliesTo products="SE" roles="Mailbox"/>
    <fixedIn product="SE">${seFix}</fixedIn>
  </mitigation>
</catalog>`;
}

interface WindowsRow {
  os: string | null;
  file: string | null;
  state: 'fixed' | 'vulnerable' | 'not-affected' | 'unknown';
  reason: string;
}

const WINDOWS_ROWS: WindowsRow[] = [
  { os: '10.0.17763', file: '10.0.17763.4968', state: 'fixed', reason: 'cachtokn.dll 10.0.17763.4968 has the fix (October 2023 Windows security update: 10.0.17763.4968 on Windows Server 2019)' },
  { os: '10.0.17763', file: '10.0.17763.5830', state: 'fixed', reason: 'has the fix' },
  { os: '10.0.17763.5830', file: '10.0.17763.4851', state: 'vulnerable', reason: 'cachtokn.dll 10.0.17763.4851 is before the fix 10.0.17763.4968 (Windows Server 2019, October 2023 Windows security update)' },
  { os: '10.0.17763', file: '10.0.17763.1 (WinBuild.160101.0800)', state: 'vulnerable', reason: 'cachtokn.dll 10.0.17763.1 is before the fix' },
  { os: '6.2.9200', file: '8.0.9200.24514', state: 'fixed', reason: 'Windows Server 2012)' },
  { os: '6.3.9600', file: '8.5.9600.21600', state: 'vulnerable', reason: 'before the fix 8.5.9600.21613 (Windows Server 2012 R2' },
  { os: '10.0.14393', file: '10.0.14393.6343', state: 'fixed', reason: 'Windows Server 2016' },
  { os: '10.0.20348', file: '10.0.20348.2028', state: 'vulnerable', reason: 'before the fix 10.0.20348.2029 (Windows Server 2022' },
  { os: '10.0.26100', file: null, state: 'not-affected', reason: 'Windows Server 2025 is not affected' },
  { os: '10.0.26100', file: '10.0.26100.1', state: 'not-affected', reason: 'Windows Server 2025 is not affected' },
  { os: null, file: '10.0.20348.2029', state: 'fixed', reason: 'Windows Server 2022' },
  { os: null, file: '10.0.20348.1000', state: 'vulnerable', reason: 'before the fix 10.0.20348.2029' },
  { os: null, file: null, state: 'unknown', reason: 'the Windows version and the cachtokn.dll version are both unknown' },
  { os: '10.0.17763', file: null, state: 'unknown', reason: 'the cachtokn.dll version is unknown on Windows Server 2019 (fixed from 10.0.17763.4968' },
  { os: '6.1.7601', file: '7.5.7601.17514', state: 'unknown', reason: 'Windows 6.1.7601 is not a version the catalog knows for cachtokn.dll' },
  { os: '10.0.17763', file: '10.0.14393.6343', state: 'unknown', reason: 'cachtokn.dll 10.0.14393.6343 does not belong to Windows Server 2019' },
  { os: '10.0.17763', file: 'garbage', state: 'unknown', reason: '"garbage" is not a file version of cachtokn.dll' },
  { os: 'Windows', file: '10.0.17763.4968', state: 'unknown', reason: '"Windows" is not a Windows version' },
  { os: null, file: '9.9.9.9', state: 'unknown', reason: 'the Windows version is unknown (no os.xml) and cachtokn.dll 9.9.9.9 matches no Windows' },
];

describe('windowsFixState: tokencache-module by Windows and cachtokn.dll version', () => {
  const m = mitigation('tokencache-module');
  for (const row of WINDOWS_ROWS) {
    it(`os ${row.os ?? 'unknown'}, file ${row.file ?? 'unknown'}: ${row.state}`, () => {
      const result = windowsFixState(m, row.os, row.file);
      assert.equal(result.state, row.state, result.reason);
      assert.ok(result.reason.includes(row.reason), `reason "${result.reason}" should contain "${row.reason}"`);
    });
  }

  it('names the matched Windows and its fixed version', () => {
    assert.deepEqual(windowsFixState(m, '10.0.17763', '10.0.17763.4000'), {
      state: 'vulnerable',
      reason: 'cachtokn.dll 10.0.17763.4000 is before the fix 10.0.17763.4968 (Windows Server 2019, October 2023 Windows security update)',
      os: 'Windows Server 2019',
      fixedVersion: '10.0.17763.4968',
    });
  });

  it('refuses a mitigation that Exchange builds fix', () => {
    assert.throws(() => windowsFixState(mitigation('owa-csp-xss'), '10.0.17763', null), /use fixState/);
  });
});
