import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExmitError } from '../../src/errors.ts';
import { childrenNamed, descend, parseConfigXml } from '../../src/iis/config-xml.ts';
import { fixture } from '../fixtures/iis/scenario.ts';

const WWWROOT = 'C:\\inetpub\\wwwroot\\web.config';

test('parses the real e19 configuration files with document order and line numbers', () => {
  const apphost = parseConfigXml(fixture('e19-applicationHost.config'), 'applicationHost.config');
  assert.equal(apphost.root.name, 'configuration');
  const locations = childrenNamed(apphost.root, 'location');
  assert.equal(locations[0]?.attributes.path, '');
  assert.equal(locations[0]?.line, 1195);
  assert.equal(locations[1]?.attributes.path, 'Default Web Site');
  assert.equal(locations[1]?.line, 1298);
  const sites = descend(apphost.root, 'system.applicationHost', 'sites', 'site');
  assert.deepEqual(
    sites.map((s) => [s.attributes.name, s.line]),
    [
      ['Default Web Site', 409],
      ['Exchange Back End', 463],
    ],
  );

  const eems = parseConfigXml(fixture('e19-wwwroot-web-eems.config'), WWWROOT);
  const rules = descend(eems.root, 'system.webServer', 'rewrite', 'rules', 'rule');
  assert.deepEqual(
    rules.map((r) => r.attributes.name),
    ['EEMS M1.1 PowerShell - inbound', 'RequestBlockingRule1', 'PowerShell - inbound'],
  );
  assert.equal(rules[0]?.line, 49);
  assert.equal(descend(rules[0]!, 'conditions', 'add')[0]?.attributes.pattern, '(?=.*autodiscover)(?=.*powershell)');
});

test('errors name the file and line', async (t) => {
  const cases: { name: string; text: string; file: string; message: RegExp }[] = [
    {
      name: 'the real not-well-formed web.config (<system.web> instead of </system.web>)',
      text: fixture('e19-wwwroot-web-eems-broken.config'),
      file: WWWROOT,
      message: /^C:\\inetpub\\wwwroot\\web\.config line 42: not well-formed: .*system\.web/,
    },
    {
      name: 'a DOCTYPE (entity expansion is never allowed)',
      text: '<?xml version="1.0"?>\n<!DOCTYPE configuration [<!ENTITY x "y">]>\n<configuration>&x;</configuration>',
      file: 'x.config',
      message: /^x\.config line 2: (a DOCTYPE is not allowed|not well-formed)/,
    },
    {
      name: 'a root other than <configuration>',
      text: '<?xml version="1.0"?>\n\n<settings />',
      file: 'y.config',
      message: /^y\.config line 3: the root element is <settings>, expected <configuration>/,
    },
    {
      name: 'unclosed element',
      text: '<configuration>\n  <system.webServer>\n</configuration>',
      file: 'z.config',
      message: /^z\.config line 3: not well-formed/,
    },
    {
      name: 'text that is not XML at all',
      text: 'not xml',
      file: 'w.config',
      message: /^w\.config( line \d+)?: /,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.throws(
        () => parseConfigXml(c.text, c.file),
        (err: unknown) => err instanceof ExmitError && err.code === 1 && c.message.test(err.message),
      );
    });
  }
});

test('a DOCTYPE inside a comment is only a comment', () => {
  const doc = parseConfigXml('<configuration><!-- <!DOCTYPE x> --><a/></configuration>', 'c.config');
  assert.deepEqual(
    doc.root.children.map((c) => c.name),
    ['a'],
  );
});

test('attribute values: entities decoded, nothing parsed as numbers or booleans, BOM and CRLF handled', () => {
  const text = '\uFEFF<?xml version="1.0"?>\r\n<configuration>\r\n  <add pattern="a&amp;b&lt;c&#65;&#x42;" version="15.20" flag="true" />\r\n</configuration>';
  const doc = parseConfigXml(text, 'a.config');
  const add = doc.root.children[0];
  assert.deepEqual(add?.attributes, { pattern: 'a&b<cAB', version: '15.20', flag: 'true' });
  assert.equal(add?.line, 3);
});

test('the same file and text parse once per run; other text, another file or a bad file are parsed again', () => {
  const text = '<configuration><system.webServer><rewrite><rules /></rewrite></system.webServer></configuration>';
  const first = parseConfigXml(text, 'C:\\a\\web.config');
  assert.equal(parseConfigXml(text, 'C:\\a\\web.config'), first);
  const other = parseConfigXml(`${text}\n`, 'C:\\a\\web.config');
  assert.notEqual(other, first);
  assert.equal(other.root.name, 'configuration');
  const elsewhere = parseConfigXml(text, 'C:\\b\\web.config');
  assert.notEqual(elsewhere, first);
  assert.equal(elsewhere.file, 'C:\\b\\web.config');
  for (let i = 0; i < 2; i++) assert.throws(() => parseConfigXml('<configuration>', 'C:\\c\\web.config'), /C:\\c\\web\.config line 1: not well-formed/);
});
