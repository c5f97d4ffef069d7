import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { findMitigation, loadBundledCatalog, MAX_CATALOG_BYTES, parseCatalog } from '../../src/catalog/parse.ts';
import { ExmitError } from '../../src/errors.ts';

const BASE = `<?xml version="1.0" encoding="UTF-8"?>
<catalog xmlns="urn:exmit:catalog:1" serial="2026112801" published="2026-11-28" expires="2027-11-28" requires="&gt;=0.1.0 &lt;1.0.0">
  <mitigation id="m" severity="important">
    <title>T</title>
    <cve>CVE-2022-41040</cve>
    <description>D</description>
    <reference>https://example.com/a</reference>
    <appliesTo products="2019 SE" roles="Mailbox ClientAccess"/>
    <fixedIn product="2019">
      <update cu="CU12" build="15.2.1118.20" label="Nov22SU"/>
      <fixedFrom cu="CU13" build="15.2.1258.12"/>
    </fixedIn>
    <fixedIn product="SE" allFixed="true"/>
    <probes>
      <probe kind="attack" url="/autodiscover/autodiscover.json?@x/powershell&amp;a=1" description="a"/>
      <probe kind="ordinary" method="POST" url="/owa/" description="o">
        <header name="Cookie" value="a=b"/>
      </probe>
    </probes>
    <actions>
      <service name="MSExchangeHM" products="2019" roles="Mailbox"/>
      <inbound-rule location="Default Web Site" name="exmit m" matchUrl=".*" stopProcessing="true">
        <condition input="{UrlDecode:{REQUEST_URI}}" pattern="(?=.*autodiscover)(?=.*powershell)"/>
        <action type="AbortRequest"/>
      </inbound-rule>
      <app-pool name="MSExchangeECPAppPool"/>
    </actions>
  </mitigation>
</catalog>
`;

/** 1-based line of the first occurrence of needle in text. */
function lineOf(text: string, needle: string): number {
  const index = text.indexOf(needle);
  assert.ok(index >= 0, `test setup: "${needle}" not in the document`);
  return text.slice(0, index).split('\n').length;
}

function replaceOnce(text: string, from: string, to: string): string {
  assert.ok(text.includes(from), `test setup: "${from}" not in the document`);
  return text.replace(from, to);
}

function catchError(fn: () => unknown): ExmitError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ExmitError, `expected an ExmitError, got ${String(error)}`);
    return error;
  }
  assert.fail('expected an error');
}

describe('parseCatalog: a valid catalog', () => {
  const catalog = parseCatalog(BASE, 't.xml');
  const m = catalog.mitigations[0];

  it('reads the root attributes as typed values', () => {
    assert.equal(catalog.serial, 2026112801);
    assert.equal(catalog.published, '2026-11-28');
    assert.equal(catalog.expires, '2027-11-28');
    assert.equal(catalog.requires, '>=0.1.0 <1.0.0');
  });

  it('keeps builds as strings and reads the per-CU fix', () => {
    assert.ok(m !== undefined && m.fix.kind === 'exchange');
    assert.deepEqual(m.fix.products, [
      {
        product: '2019',
        allFixed: false,
        fixedFrom: '15.2.1258.12',
        fixedFromCu: 'CU13',
        updates: [{ cu: 'CU12', build: '15.2.1118.20', update: 'Nov22SU' }],
        safeToRemoveFrom: [],
      },
      { product: 'SE', allFixed: true, fixedFrom: null, fixedFromCu: null, updates: [], safeToRemoveFrom: [] },
    ]);
  });

  it('keeps actions in document order across kinds, with schema defaults', () => {
    assert.ok(m !== undefined);
    assert.deepEqual(
      m.actions.map((a) => a.kind),
      ['service', 'inbound-rule', 'app-pool'],
    );
    assert.deepEqual(m.actions[1], {
      kind: 'inbound-rule',
      location: 'Default Web Site',
      name: 'exmit m',
      matchUrl: '.*',
      logicalGrouping: 'MatchAll',
      conditions: [{ input: '{UrlDecode:{REQUEST_URI}}', pattern: '(?=.*autodiscover)(?=.*powershell)', negate: false, ignoreCase: true }],
      action: { type: 'AbortRequest' },
      stopProcessing: true,
    });
    assert.deepEqual(m.actions[0], { kind: 'service', name: 'MSExchangeHM', products: ['2019'], roles: ['Mailbox'], startType: 'Disabled' });
    assert.deepEqual(m.actions[2], { kind: 'app-pool', name: 'MSExchangeECPAppPool', autoStart: false });
  });

  it('decodes entities in probes and fills probe defaults', () => {
    assert.ok(m !== undefined);
    assert.deepEqual(m.probes[0], {
      kind: 'attack',
      description: 'a',
      site: 'Default Web Site',
      url: '/autodiscover/autodiscover.json?@x/powershell&a=1',
      method: 'GET',
      headers: {},
      response: null,
      expectHeader: null,
    });
    assert.equal(m.probes[1]?.method, 'POST');
    assert.deepEqual(m.probes[1]?.headers, { Cookie: 'a=b' });
  });

  it('reads text elements with their whitespace collapsed', () => {
    const doc = replaceOnce(BASE, '<description>D</description>', '<description>\n      one\n      two &amp; three\n    </description>');
    assert.equal(parseCatalog(doc, 't.xml').mitigations[0]?.description, 'one two & three');
  });

  it('reads CustomResponse 403, outbound rules and Windows fixes', () => {
    const doc = BASE.replace(
      '</catalog>',
      `  <mitigation id="w" severity="moderate">
    <title>W</title>
    <cve>CVE-2023-21709</cve>
    <description>D</description>
    <reference>https://example.com/w</reference>
    <appliesTo products="2016" roles="Mailbox"/>
    <windowsFix file="cachtokn.dll" update="October 2023">
      <windows name="Windows Server 2012" osVersion="6.2.9200" fileVersion="8.0.9200" fixed="8.0.9200.24514"/>
      <windows name="Windows Server 2025" osVersion="10.0.26100" fileVersion="10.0.26100" notAffected="true"/>
    </windowsFix>
    <probes>
      <probe kind="attack" url="/owa/" description="a">
        <response contentType="text/html"><header name="Content-Security-Policy" value="x"/></response>
        <expectHeader name="Content-Security-Policy" contains="script-src-attr 'none'"/>
      </probe>
      <probe kind="ordinary" url="/ecp/" description="o"/>
    </probes>
    <actions>
      <inbound-rule location="Default Web Site/ecp" name="exmit w block" matchUrl="^ecp" logicalGrouping="MatchAny">
        <action type="CustomResponse" statusCode="403" statusReason="Forbidden" statusDescription="blocked by exmit"/>
      </inbound-rule>
      <outbound-rule location="Default Web Site/owa" name="exmit w" serverVariable="RESPONSE_Content_Security_Policy" pattern="(.*)" value="{R:1}; script-src-attr 'none'">
        <precondition name="exmit w html">
          <condition input="{RESPONSE_CONTENT_TYPE}" pattern="^text/html" ignoreCase="false" negate="true"/>
        </precondition>
        <recognisePrefix>EEMS M2</recognisePrefix>
      </outbound-rule>
      <remove-global-module name="TokenCacheModule"/>
    </actions>
  </mitigation>
</catalog>`,
    );
    const w = parseCatalog(doc, 't.xml').mitigations[1];
    assert.ok(w !== undefined);
    assert.deepEqual(w.fix, {
      kind: 'windows',
      windows: {
        file: 'cachtokn.dll',
        update: 'October 2023',
        versions: [
          { os: 'Windows Server 2012', osVersionPrefix: '6.2.9200', fileVersionPrefix: '8.0.9200', fixed: '8.0.9200.24514' },
          { os: 'Windows Server 2025', osVersionPrefix: '10.0.26100', fileVersionPrefix: '10.0.26100', fixed: null },
        ],
      },
    });
    assert.deepEqual(w.actions[0], {
      kind: 'inbound-rule',
      location: 'Default Web Site/ecp',
      name: 'exmit w block',
      matchUrl: '^ecp',
      logicalGrouping: 'MatchAny',
      conditions: [],
      action: { type: 'CustomResponse', statusCode: 403, statusReason: 'Forbidden', statusDescription: 'blocked by exmit' },
      stopProcessing: false,
    });
    assert.deepEqual(w.actions[1], {
      kind: 'outbound-rule',
      location: 'Default Web Site/owa',
      name: 'exmit w',
      serverVariable: 'RESPONSE_Content_Security_Policy',
      pattern: '(.*)',
      value: "{R:1}; script-src-attr 'none'",
      precondition: {
        name: 'exmit w html',
        logicalGrouping: 'MatchAll',
        conditions: [{ input: '{RESPONSE_CONTENT_TYPE}', pattern: '^text/html', negate: true, ignoreCase: false }],
      },
      recognisePrefixes: ['EEMS M2'],
    });
    assert.deepEqual(w.actions[2], { kind: 'remove-global-module', name: 'TokenCacheModule' });
    assert.deepEqual(w.probes[0]?.response, { contentType: 'text/html', headers: { 'Content-Security-Policy': 'x' } });
    assert.deepEqual(w.probes[0]?.expectHeader, { name: 'Content-Security-Policy', contains: "script-src-attr 'none'" });
  });

  it("parses the example in mitigations/README.md", () => {
    const readme = readFileSync(new URL('../../mitigations/README.md', import.meta.url), 'utf8');
    const example = /```xml\n([\s\S]*?)```/.exec(readme)?.[1];
    assert.ok(example !== undefined, 'the README has an xml example');
    assert.deepEqual(parseCatalog(example, 'README.md').mitigations.map((x) => x.id), ['proxynotshell-autodiscover']);
  });

  it('accepts a byte-order mark and CRLF line ends', () => {
    const doc = '\uFEFF' + BASE.replace(/\n/g, '\r\n');
    assert.equal(parseCatalog(doc, 't.xml').mitigations.length, 1);
  });
});

interface BrokenCase {
  name: string;
  doc: string;
  /** Text on the line the error must name. */
  at: string;
  /** Element path and reason the message must contain. */
  says: string;
}

const MITIGATION_W = `<mitigation id="m" severity="important">`;

const BROKEN: BrokenCase[] = [
  {
    name: 'a DOCTYPE with an entity',
    doc: replaceOnce(BASE, '<catalog ', '<!DOCTYPE catalog [<!ENTITY boom "boom">]>\n<catalog '),
    at: '<!DOCTYPE',
    says: 'a DOCTYPE or entity declaration is not allowed',
  },
  {
    name: 'an app pool outside the vocabulary',
    doc: replaceOnce(BASE, '<app-pool name="MSExchangeECPAppPool"/>', '<app-pool name="W3SVC"/>'),
    at: 'W3SVC',
    says: '<mitigation id="m">/<actions>/<app-pool name="W3SVC">: app pool "W3SVC" is outside the vocabulary',
  },
  {
    name: 'a service that is not Exchange\'s',
    doc: replaceOnce(BASE, 'name="MSExchangeHM"', 'name="Spooler"'),
    at: 'Spooler',
    says: '<mitigation id="m">/<actions>/<service name="Spooler">: service "Spooler" is outside the vocabulary',
  },
  {
    name: 'a rule action Redirect',
    doc: replaceOnce(BASE, '<action type="AbortRequest"/>', '<action type="Redirect" url="https://evil.example/"/>'),
    at: 'type="Redirect"',
    says: '<action url="https://evil.example/">: unknown attribute url',
  },
  {
    name: 'a rule action Redirect without extra attributes',
    doc: replaceOnce(BASE, '<action type="AbortRequest"/>', '<action type="Redirect"/>'),
    at: 'type="Redirect"',
    says: '<mitigation id="m">/<actions>/<inbound-rule name="exmit m">/<action type="Redirect">: rule action Redirect is outside the vocabulary',
  },
  {
    name: 'a CustomResponse that is not 403',
    doc: replaceOnce(BASE, '<action type="AbortRequest"/>', '<action type="CustomResponse" statusCode="302" statusReason="Found" statusDescription="x"/>'),
    at: 'statusCode="302"',
    says: '<action statusCode="302">: statusCode "302" is outside the vocabulary',
  },
  {
    name: 'an action element outside the vocabulary',
    doc: replaceOnce(BASE, '<app-pool name="MSExchangeECPAppPool"/>', '<registry key="HKLM\\SOFTWARE\\x"/>'),
    at: '<registry',
    says: '<mitigation id="m">/<actions>/<registry>: unknown element <registry> in <actions>',
  },
  {
    name: 'duplicate ids',
    doc: replaceOnce(BASE, '</catalog>', BASE.slice(BASE.indexOf(MITIGATION_W), BASE.indexOf('</catalog>')).replace('name="exmit m"', 'name="exmit m2"') + '</catalog>'),
    at: 'UNUSED',
    says: '<mitigation id="m">: duplicate id "m" (first at line 3)',
  },
  {
    name: 'an invalid regular expression',
    doc: replaceOnce(BASE, 'pattern="(?=.*autodiscover)(?=.*powershell)"', 'pattern="(unclosed"'),
    at: '(unclosed',
    says: '<condition pattern="(unclosed">: pattern "(unclosed" is not a valid regular expression',
  },
  {
    name: 'a build that is not a build number',
    doc: replaceOnce(BASE, 'build="15.2.1118.20"', 'build="15.2.1118.2x"'),
    at: '15.2.1118.2x',
    says: '<mitigation id="m">/<fixedIn product="2019">/<update build="15.2.1118.2x">: not a build number',
  },
  {
    name: 'a build of another product',
    doc: replaceOnce(BASE, 'build="15.2.1118.20"', 'build="15.1.2507.16"'),
    at: '15.1.2507.16',
    says: '<update build="15.1.2507.16">: build 15.1.2507.16 is not an Exchange 2019 build',
  },
  {
    name: 'an update at or after fixedFrom',
    doc: replaceOnce(BASE, '<update cu="CU12" build="15.2.1118.20" label="Nov22SU"/>', '<update cu="CU14" build="15.2.1544.41" label="Jun26SU"/>'),
    at: 'CU14',
    says: 'is not older than fixedFrom CU13',
  },
  {
    name: 'a bad update label',
    doc: replaceOnce(BASE, 'label="Nov22SU"', 'label="November"'),
    at: 'label="November"',
    says: '<update label="November">: label "November" is not an update label',
  },
  {
    name: 'a date that does not exist',
    doc: replaceOnce(BASE, 'published="2026-11-28"', 'published="2026-02-30"'),
    at: '2026-02-30',
    says: '<catalog published="2026-02-30">: published "2026-02-30" is not a date',
  },
  {
    name: 'a month 00 (an invalid Date, not only a wrong one)',
    doc: replaceOnce(BASE, 'published="2026-11-28"', 'published="9100-00-00"'),
    at: '9100-00-00',
    says: '<catalog published="9100-00-00">: published "9100-00-00" is not a date',
  },
  {
    name: 'expires before published',
    doc: replaceOnce(BASE, 'expires="2027-11-28"', 'expires="2026-01-01"'),
    at: '2026-01-01',
    says: 'expires 2026-01-01 is not after published 2026-11-28',
  },
  {
    name: 'a serial that is not an integer',
    doc: replaceOnce(BASE, 'serial="2026112801"', 'serial="2026.11"'),
    at: '2026.11',
    says: 'serial "2026.11" is not a positive integer',
  },
  {
    name: 'requires that is not a semver range',
    doc: replaceOnce(BASE, 'requires="&gt;=0.1.0 &lt;1.0.0"', 'requires="soon"'),
    at: 'soon',
    says: 'requires "soon" is not a semver range',
  },
  {
    name: 'the wrong namespace',
    doc: replaceOnce(BASE, 'urn:exmit:catalog:1', 'urn:exmit:catalog:2'),
    at: 'urn:exmit:catalog:2',
    says: '<catalog xmlns="urn:exmit:catalog:2">: xmlns must be "urn:exmit:catalog:1"',
  },
  {
    name: 'an unknown attribute',
    doc: replaceOnce(BASE, MITIGATION_W, '<mitigation id="m" severity="important" enabled="true">'),
    at: 'enabled="true"',
    says: '<mitigation enabled="true">: unknown attribute enabled',
  },
  {
    name: 'an unknown element',
    doc: replaceOnce(BASE, '<title>T</title>', '<title>T</title>\n    <script>x</script>'),
    at: '<script>',
    says: '<mitigation id="m">/<script>: unknown element <script> in <mitigation>',
  },
  {
    name: 'a missing title',
    doc: replaceOnce(BASE, '<title>T</title>\n', ''),
    at: MITIGATION_W,
    says: '<mitigation id="m">: missing element <title>',
  },
  {
    name: 'a title given twice',
    doc: replaceOnce(BASE, '<title>T</title>', '<title>T</title>\n    <title>U</title>'),
    at: '<title>U',
    says: '<title> may appear only once in <mitigation>',
  },
  {
    name: 'a missing required attribute',
    doc: replaceOnce(BASE, ' severity="important"', ''),
    at: '<mitigation id="m">',
    says: '<mitigation id="m">: missing attribute severity',
  },
  {
    name: 'an unknown product',
    doc: replaceOnce(BASE, 'products="2019 SE"', 'products="2010 2019 SE"'),
    at: '2010',
    says: '<appliesTo products="2010 2019 SE">: products: unknown product "2010"',
  },
  {
    name: 'an unknown role',
    doc: replaceOnce(BASE, 'roles="Mailbox ClientAccess"', 'roles="Mailbox HubTransport"'),
    at: 'HubTransport',
    says: 'roles: unknown role "HubTransport"',
  },
  {
    name: 'a product without <fixedIn>',
    doc: replaceOnce(BASE, '<fixedIn product="SE" allFixed="true"/>', ''),
    at: MITIGATION_W,
    says: 'missing <fixedIn product="SE">',
  },
  {
    name: 'a CVE that is not a CVE number',
    doc: replaceOnce(BASE, '<cve>CVE-2022-41040</cve>', '<cve>CVE-22-41040</cve>'),
    at: 'CVE-22-41040',
    says: '<mitigation id="m">/<cve>: "CVE-22-41040" is not a CVE number',
  },
  {
    name: 'a rule name without the exmit prefix',
    doc: replaceOnce(BASE, 'name="exmit m"', 'name="PowerShell - inbound"'),
    at: 'PowerShell - inbound',
    says: 'name "PowerShell - inbound" must start with "exmit "',
  },
  {
    name: 'a rule location outside Default Web Site',
    doc: replaceOnce(BASE, 'location="Default Web Site"', 'location="Exchange Back End"'),
    at: 'Exchange Back End',
    says: 'location "Exchange Back End" is outside the vocabulary',
  },
  {
    name: 'a condition input that is not a server variable',
    doc: replaceOnce(BASE, 'input="{UrlDecode:{REQUEST_URI}}"', 'input="REQUEST_URI"'),
    at: 'input="REQUEST_URI"',
    says: 'input "REQUEST_URI" is not a server variable',
  },
  {
    name: 'a rule without probes',
    doc: BASE.replace(/<probes>[\s\S]*<\/probes>\n/, ''),
    at: MITIGATION_W,
    says: 'missing <probes>',
  },
  {
    name: 'probes without an ordinary request',
    doc: replaceOnce(BASE, 'kind="ordinary"', 'kind="bypass"'),
    at: '<probes>',
    says: 'no probe of kind ordinary',
  },
  {
    name: 'a reference that is not https',
    doc: replaceOnce(BASE, 'https://example.com/a', 'http://example.com/a'),
    at: 'http://example.com/a',
    says: '"http://example.com/a" is not an https URL',
  },
  {
    name: 'an unknown entity',
    doc: replaceOnce(BASE, '<title>T</title>', '<title>T &nbsp;</title>'),
    at: '<title>',
    says: 'text: unknown entity &nbsp;',
  },
  {
    name: 'a raw < in an attribute',
    doc: replaceOnce(BASE, 'requires="&gt;=0.1.0 &lt;1.0.0"', 'requires=">=0.1.0 <1.0.0"'),
    at: 'requires=',
    says: 'attribute requires: "<" must be written &lt;',
  },
  {
    name: 'a CDATA section',
    doc: replaceOnce(BASE, '<description>D</description>', '<description><![CDATA[D]]></description>'),
    at: 'CDATA',
    says: 'CDATA sections are not allowed',
  },
  {
    name: 'text where none belongs',
    doc: replaceOnce(BASE, '<actions>', '<actions>\n      stray'),
    at: '<actions>',
    says: '<mitigation id="m">/<actions>: text is not allowed in <actions> ("stray")',
  },
  {
    name: 'XML that is not well-formed',
    doc: replaceOnce(BASE, '<title>T</title>', '<title>T</titel>'),
    at: '</titel>',
    says: 'not well-formed XML',
  },
  {
    name: 'a duplicate rule name',
    doc: replaceOnce(BASE, '<app-pool name="MSExchangeECPAppPool"/>', '<inbound-rule location="Default Web Site" name="exmit m" matchUrl=".*"><action type="AbortRequest"/></inbound-rule>'),
    at: '<inbound-rule location="Default Web Site" name="exmit m" matchUrl=".*"><action',
    says: 'name "exmit m" is already used at line',
  },
  {
    name: 'a service filter outside the mitigation\'s products',
    doc: replaceOnce(BASE, 'products="2019" roles="Mailbox"', 'products="2013" roles="Mailbox"'),
    at: 'products="2013"',
    says: 'product 2013 is not in the mitigation\'s <appliesTo products>',
  },
  {
    name: 'allFixed with updates',
    doc: replaceOnce(BASE, '<fixedIn product="SE" allFixed="true"/>', '<fixedIn product="SE" allFixed="true"><update cu="RTM" build="15.2.2562.43" label="Jun26SU"/></fixedIn>'),
    at: 'cu="RTM"',
    says: 'allFixed="true" takes no <update>',
  },
  {
    name: 'an outbound rule that replaces instead of appending',
    doc: replaceOnce(
      BASE,
      '<app-pool name="MSExchangeECPAppPool"/>',
      '<outbound-rule location="Default Web Site/owa" name="exmit o" serverVariable="RESPONSE_Location" pattern="(.*)" value="https://evil.example/"><precondition name="exmit o p"><condition input="{RESPONSE_CONTENT_TYPE}" pattern="."/></precondition></outbound-rule>',
    ),
    at: '<outbound-rule',
    says: 'outbound rules only append to a header',
  },
  {
    name: 'a probe url that is not a path',
    doc: replaceOnce(BASE, 'url="/owa/"', 'url="https://mail.contoso.com/owa/"'),
    at: 'https://mail.contoso.com/owa/',
    says: 'url "https://mail.contoso.com/owa/" must be a path and query',
  },
];

describe('parseCatalog: broken catalogs name the line, the element path and the reason', () => {
  for (const c of BROKEN) {
    it(c.name, () => {
      const error = catchError(() => parseCatalog(c.doc, 't.xml'));
      assert.equal(error.code, 1, 'an inputError (exit 1)');
      const line = c.at === 'UNUSED' ? c.doc.lastIndexOf(MITIGATION_W) : c.doc.indexOf(c.at);
      assert.ok(line >= 0);
      const expectedLine = c.at === 'UNUSED' ? c.doc.slice(0, line).split('\n').length : lineOf(c.doc, c.at);
      assert.ok(error.message.startsWith(`t.xml line ${expectedLine}: `), `message "${error.message}" should start with line ${expectedLine}`);
      assert.ok(error.message.includes(c.says), `message "${error.message}" should contain "${c.says}"`);
    });
  }

  it('a file over the size limit', () => {
    const doc = BASE.replace('<description>D</description>', `<description>${'x'.repeat(MAX_CATALOG_BYTES)}</description>`);
    const error = catchError(() => parseCatalog(doc, 't.xml'));
    assert.match(error.message, /^t\.xml: \d+ bytes, over the limit of 1048576 bytes/);
  });

  it('a root element that is not <catalog>', () => {
    const error = catchError(() => parseCatalog('<feed/>', 't.xml'));
    assert.match(error.message, /^t\.xml line 1: <feed>: the root element must be <catalog>/);
  });
});

describe('loadBundledCatalog and findMitigation', () => {
  const catalog = loadBundledCatalog();

  it('loads the bundled catalog with the eight mitigations of the contract', () => {
    assert.equal(catalog.serial, 2026112801);
    assert.equal(catalog.published, '2026-11-28');
    assert.equal(catalog.expires, '2027-11-28');
    assert.equal(catalog.requires, '>=0.1.0 <1.0.0');
    assert.deepEqual(
      catalog.mitigations.map((m) => m.id),
      [
        'proxylogon-cookie',
        'proxylogon-um-services',
        'proxylogon-ecp-apppool',
        'proxylogon-oab-apppool',
        'proxynotshell-autodiscover',
        'owassrf',
        'tokencache-module',
        'owa-csp-xss',
      ],
    );
  });

  it('carries the published rules exactly', () => {
    const [pnsRule] = findMitigation(catalog, 'proxynotshell-autodiscover')[0]?.actions ?? [];
    assert.deepEqual(pnsRule, {
      kind: 'inbound-rule',
      location: 'Default Web Site',
      name: 'exmit proxynotshell-autodiscover',
      matchUrl: '.*',
      logicalGrouping: 'MatchAll',
      conditions: [{ input: '{UrlDecode:{REQUEST_URI}}', pattern: '(?=.*autodiscover)(?=.*powershell)', negate: false, ignoreCase: true }],
      action: { type: 'AbortRequest' },
      stopProcessing: true,
    });
    const cookie = findMitigation(catalog, 'proxylogon-cookie')[0]?.actions ?? [];
    assert.deepEqual(
      cookie.map((a) => (a.kind === 'inbound-rule' ? [a.conditions[0]?.input, a.conditions[0]?.pattern, a.action.type, a.stopProcessing] : null)),
      [
        ['{HTTP_COOKIE}', '(.*)X-AnonResource-Backend(.*)', 'AbortRequest', false],
        ['{HTTP_COOKIE}', '(.*)X-BEResource=(.+)/(.+)~(.+)', 'AbortRequest', true],
      ],
    );
    const owa = findMitigation(catalog, 'owa-csp-xss')[0]?.actions[0];
    assert.ok(owa?.kind === 'outbound-rule');
    assert.equal(owa.location, 'Default Web Site/owa');
    assert.equal(owa.value, "{R:1}; script-src-attr 'none'");
    assert.deepEqual(
      owa.precondition.conditions.map((c) => [c.input, c.pattern]),
      [
        ['{RESPONSE_CONTENT_TYPE}', '^text/html'],
        ['{REQUEST_URI}', '^/owa/?($|\\?|default\\.aspx|projection\\.aspx|readingPane\\.aspx|popout\\.aspx)'],
      ],
    );
  });

  it('filters services by product and role as the contract says', () => {
    const um = findMitigation(catalog, 'proxylogon-um-services')[0];
    assert.ok(um !== undefined);
    assert.deepEqual(
      um.actions.map((a) => (a.kind === 'service' ? `${a.name}:${a.products.join('+')}:${a.roles.join('+')}` : a.kind)),
      // Managed Availability first, then the UM services; the call router is MSExchangeUMCR on 2013 and 2016 (issue 9).
      ['MSExchangeHM:2013+2016:', 'MSExchangeHMRecovery:2016:', 'MSExchangeUM:2013+2016:Mailbox', 'MSExchangeUMCR:2013+2016:ClientAccess'],
    );
    assert.deepEqual(um.patchOnly.map((p) => p.product), ['2019']);
    assert.equal(um.breaks?.includes('voice mail'), true);
    for (const id of ['proxylogon-ecp-apppool', 'proxylogon-oab-apppool']) {
      const m = findMitigation(catalog, id)[0];
      assert.ok(m !== undefined && m.breaks !== null);
      const hm = m.actions.filter((a) => a.kind === 'service').map((a) => `${a.name}:${a.products.join('+')}`);
      assert.deepEqual(hm, ['MSExchangeHM:', 'MSExchangeHMRecovery:2016+2019']);
    }
  });

  it('marks owa-csp-xss not applicable on 2013 with the reason, and owassrf patch-only', () => {
    const owa = findMitigation(catalog, 'owa-csp-xss')[0];
    assert.ok(owa !== undefined);
    assert.equal(owa.notApplicable[0]?.product, '2013');
    assert.match(owa.notApplicable[0]?.reason ?? '', /did not evaluate/);
    assert.equal(owa.products.includes('2013'), false);
    const ssrf = findMitigation(catalog, 'owassrf')[0];
    assert.ok(ssrf !== undefined);
    assert.deepEqual(ssrf.actions, []);
    assert.equal(ssrf.patchOnly[0]?.product, null);
  });

  it('has attack, bypass and ordinary probes where rules judge them', () => {
    const pns = findMitigation(catalog, 'proxynotshell-autodiscover')[0];
    assert.ok(pns !== undefined);
    const bypasses = pns.probes.filter((p) => p.kind === 'bypass').map((p) => p.url);
    assert.ok(bypasses.some((u) => u.includes('%50owershell')));
    assert.ok(bypasses.some((u) => !u.includes('autodiscover.json') && !u.includes('@')));
    const owa = findMitigation(catalog, 'owa-csp-xss')[0];
    assert.ok(owa !== undefined);
    for (const probe of owa.probes.filter((p) => p.kind === 'attack')) {
      assert.match(probe.response?.contentType ?? '', /^text\/html/);
      assert.deepEqual(probe.expectHeader, { name: 'Content-Security-Policy', contains: "script-src-attr 'none'" });
    }
    assert.ok(owa.probes.some((p) => p.kind === 'ordinary' && !(p.response?.contentType ?? '').startsWith('text/html')));
  });

  it('ProxyNotShell probes: the current form stops attacks and bypasses, each 2022 form misses a bypass, ordinary requests pass', () => {
    const pns = findMitigation(catalog, 'proxynotshell-autodiscover')[0];
    assert.ok(pns !== undefined);
    const decode = (uri: string): string => uri.replace(/%([0-9a-f]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    const current = /(?=.*autodiscover)(?=.*powershell)/i;
    const blocked = pns.probes.filter((p) => current.test(decode(p.url))).map((p) => p.kind);
    assert.deepEqual([...new Set(blocked)].sort(), ['attack', 'bypass']);
    assert.equal(blocked.length, pns.probes.filter((p) => p.kind !== 'ordinary').length);
    for (const old of [/.*autodiscover\.json.*\@.*Powershell.*/i, /.*autodiscover\.json.*Powershell.*/i]) {
      for (const input of [(u: string) => u, decode]) {
        assert.ok(pns.probes.every((p) => p.kind !== 'attack' || old.test(input(p.url))), `${old} stops the published exploit`);
        assert.ok(pns.probes.some((p) => p.kind === 'bypass' && !old.test(input(p.url))), `${old} misses a bypass`);
      }
    }
  });

  it('finds by id or CVE, ignoring case; several by one CVE; none for an unknown id', () => {
    assert.deepEqual(findMitigation(catalog, 'ProxyNotShell-Autodiscover').map((m) => m.id), ['proxynotshell-autodiscover']);
    assert.deepEqual(findMitigation(catalog, 'cve-2022-41082').map((m) => m.id), ['proxynotshell-autodiscover']);
    assert.deepEqual(findMitigation(catalog, 'CVE-2023-36434').map((m) => m.id), ['tokencache-module']);
    assert.deepEqual(findMitigation(catalog, 'nope'), []);
    const twice = parseCatalog(
      BASE.replace('</catalog>', BASE.slice(BASE.indexOf(MITIGATION_W), BASE.indexOf('</catalog>')).replace('id="m"', 'id="n"').replace('name="exmit m"', 'name="exmit n"') + '</catalog>'),
      't.xml',
    );
    assert.deepEqual(findMitigation(twice, 'CVE-2022-41040').map((m) => m.id), ['m', 'n']);
  });
});
