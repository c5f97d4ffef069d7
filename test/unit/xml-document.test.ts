import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { XMLParser } from 'fast-xml-parser';
import { ExmitError } from '../../src/errors.ts';
import { decodeEntities, lineAt, parseXml, type ParseXmlOptions, type XmlDocument, type XmlElement } from '../../src/xml/document.ts';
import { configFixtures, isBroken } from '../support/config-fixtures.ts';

const CONFIG: ParseXmlOptions = { kind: 'configuration file', maxBytes: 32 * 1024 * 1024, allowCdata: true };
const CATALOG: ParseXmlOptions = { kind: 'catalog', maxBytes: 1024 * 1024, allowCdata: false };

function all(el: XmlElement): XmlElement[] {
  return [el, ...el.children.flatMap(all)];
}

/** fast-xml-parser's own start and end indexes for every element, in document order: an oracle independent of the front end's lexer. */
function oracle(text: string): { name: string; start: number; end: number }[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const shift = body === text ? 0 : 1;
  const parsed = new XMLParser({ preserveOrder: true, ignoreAttributes: false, processEntities: false, ignoreDeclaration: true, ignorePiTags: true, captureMetaData: true }).parse(body);
  const meta = XMLParser.getMetaDataSymbol() as unknown as symbol;
  const out: { name: string; start: number; end: number }[] = [];
  const walk = (nodes: unknown): void => {
    for (const node of nodes as Record<string | symbol, unknown>[]) {
      const name = Object.keys(node).find((k) => k !== ':@' && k !== '#text');
      if (name === undefined) continue;
      const m = node[meta] as { startIndex: number; endIndex: number };
      out.push({ name, start: m.startIndex + shift, end: m.endIndex + shift });
      walk(node[name]);
    }
  };
  walk(parsed);
  return out;
}

/** Checks every offset of every element against the text it was parsed from. */
function checkOffsets(doc: XmlDocument): void {
  const text = doc.text;
  // Independent line count: the number of line ends before each index.
  const lineBefore = new Int32Array(text.length + 1);
  for (let i = 0, line = 1; i <= text.length; i++) {
    lineBefore[i] = line;
    if (text[i] === '\n' || (text[i] === '\r' && text[i + 1] !== '\n')) line++;
  }
  for (const el of all(doc.root)) {
    const where = `${doc.file} <${el.name}> line ${el.line}`;
    const whole = text.slice(el.start, el.end);
    assert.ok(new RegExp(`^<${el.name.replace(/\./g, '\\.')}[\\s/>]`).test(whole), `${where}: starts with <name`);
    assert.ok(whole.endsWith('>'), `${where}: ends with >`);
    assert.equal(text[el.openEnd - 1], '>', `${where}: openEnd is after the start tag's >`);
    assert.equal(el.line, lineBefore[el.start], `${where}: line`);
    if (el.selfClosing) {
      assert.equal(el.end, el.openEnd, where);
      assert.equal(el.closeStart, null, where);
      assert.ok(whole.endsWith('/>'), where);
    } else {
      assert.ok(el.closeStart !== null && el.closeStart >= el.openEnd, where);
      assert.ok(text.startsWith(`</${el.name}`, el.closeStart), `${where}: closeStart is at </name`);
      assert.match(text.slice(el.closeStart, el.end), new RegExp(`^</${el.name.replace(/\./g, '\\.')}\\s*>$`), where);
    }
    for (const [name, span] of Object.entries(el.attributeSpans)) {
      assert.ok(span.start > el.start && span.valueEnd < el.openEnd, `${where}: attribute ${name} inside the start tag`);
      assert.ok(text.startsWith(name, span.start), `${where}: attribute ${name} name`);
      assert.equal(text.slice(span.valueStart, span.valueEnd), el.rawAttributes[name], `${where}: attribute ${name} raw value`);
      assert.equal(text[span.valueStart - 1], span.quote);
      assert.equal(text[span.valueEnd], span.quote);
    }
    let previousEnd = el.openEnd;
    for (const child of el.children) {
      assert.equal(child.parent, el, `${where}: parent of <${child.name}>`);
      assert.ok(child.start >= previousEnd, `${where}: children in order, not overlapping`);
      assert.ok(el.closeStart !== null && child.end <= el.closeStart && child.end <= el.end, `${where}: child inside its parent`);
      previousEnd = child.end;
    }
  }
  assert.deepEqual(
    all(doc.root).map((e) => ({ name: e.name, start: e.start, end: e.end })),
    oracle(text),
    `${doc.file}: offsets agree with fast-xml-parser's metadata`,
  );
}

test('every element of every real IIS configuration file carries offsets that slice out exactly that element', () => {
  const fixtures = configFixtures().filter((f) => !isBroken(f));
  assert.ok(fixtures.length >= 15, `found ${fixtures.length} fixtures`);
  let elements = 0;
  for (const f of fixtures) {
    const doc = parseXml(f.text, f.name, CONFIG);
    checkOffsets(doc);
    elements += all(doc.root).length;
    const crlf = parseXml(f.text.replace(/\r?\n/g, '\r\n'), `${f.name} (CRLF)`, CONFIG);
    checkOffsets(crlf);
    assert.deepEqual(all(crlf.root).map((e) => e.line), all(doc.root).map((e) => e.line), 'CRLF does not change line numbers');
  }
  assert.ok(elements > 5000, `checked ${elements} elements`);
});

test('the bundled catalog and the format README example parse with offsets', () => {
  const catalog = readFileSync(new URL('../../mitigations/catalog.xml', import.meta.url), 'utf8');
  checkOffsets(parseXml(catalog, 'catalog.xml', CATALOG));
});

test('comments, quotes holding > and />, CDATA and a BOM do not mislead the offsets', () => {
  const text = [
    '\uFEFF<?xml version="1.0" encoding="utf-8"?>',
    '<!-- a comment before the root: <configuration> -->',
    '<configuration>',
    '  <!-- <add name="commented" /> </configuration> -->',
    '  <add name="a>b" value=\'c/>d\' note="x &amp; &#x3C;y&#62;" />',
    '  <rule name="r" ><match url=".*"/><!-- > --></rule >',
    '  <text>one<![CDATA[</text> & <b>]]>two &lt;</text>',
    '  <?pi data > ?>',
    '</configuration>',
    '<!-- after -->',
    '',
  ].join('\r\n');
  const doc = parseXml(text, 'tricky.config', CONFIG);
  checkOffsets(doc);
  const [add, rule, txt] = doc.root.children;
  assert.equal(doc.root.start, text.indexOf('\r\n<configuration>') + 2);
  assert.deepEqual(add?.attributes, { name: 'a>b', value: 'c/>d', note: 'x & <y>' });
  assert.deepEqual(add?.rawAttributes, { name: 'a>b', value: 'c/>d', note: 'x &amp; &#x3C;y&#62;' });
  assert.equal(add?.line, 5);
  assert.equal(text.slice(rule?.start, rule?.end), '<rule name="r" ><match url=".*"/><!-- > --></rule >');
  assert.equal(rule?.children.length, 1);
  assert.equal(txt?.text, 'one</text> & <b>two <');
  assert.equal(txt?.children.length, 0);
  assert.doesNotThrow(() => JSON.stringify(doc.root), 'the parent link does not make the tree circular for JSON');
  assert.equal(Object.keys(doc.root).includes('parent'), false);
});

test('lineAt counts LF, CRLF and lone CR', () => {
  const doc = parseXml('<a>\n<b/>\r\n<c/>\r<d/></a>', 'l.xml', CONFIG);
  assert.deepEqual(doc.root.children.map((c) => [c.name, c.line, lineAt(doc, c.start)]), [
    ['b', 2, 2],
    ['c', 3, 3],
    ['d', 4, 4],
  ]);
});

test('decodeEntities: the five entities and character references, nothing else', () => {
  assert.deepEqual(decodeEntities('a &amp; b &lt;&gt;&quot;&apos; &#65;&#x42;&#x1F600;'), { value: 'a & b <>"\' AB\u{1F600}' });
  assert.deepEqual(decodeEntities('plain'), { value: 'plain' });
  for (const [raw, problem] of [
    ['a & b', 'a bare "&" must be written &amp;'],
    ['a &amp b', 'a bare "&" must be written &amp;'],
    ['&nbsp;', 'unknown entity &nbsp;'],
    ['&lol9;', 'unknown entity &lol9;'],
    ['&#0;', '&#0; is not a character'],
    ['&#xD800;', '&#xD800; is not a character'],
    ['&#x110000;', '&#x110000; is not a character'],
  ] as const) {
    const result = decodeEntities(raw);
    assert.ok('problem' in result && result.problem.startsWith(problem), `${raw}: ${JSON.stringify(result)}`);
  }
});

test('errors are one line naming the file, the line and what is wrong', async (t) => {
  const cases: { name: string; text: string; options?: ParseXmlOptions; message: RegExp }[] = [
    { name: 'a DOCTYPE', text: '<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY x "y">]>\n<c/>', message: /^f line 2: a DOCTYPE is not allowed in a configuration file/ },
    { name: 'a DOCTYPE in lower case', text: '<c/>\n<!doctype c>', message: /^f line 2: a DOCTYPE/ },
    { name: 'a CDATA in a catalog', text: '<c>\n<d><![CDATA[x]]></d></c>', options: CATALOG, message: /^f line 2: CDATA sections are not allowed/ },
    { name: 'a lower-case CDATA in a catalog', text: '<c>\n\n<d><![cdata[x]]></d></c>', options: CATALOG, message: /^f line 3: not well-formed XML: a CDATA section must be written <!\[CDATA\[ in upper case/ },
    { name: 'a lower-case CDATA in a configuration file', text: '<c><d><![Cdata[x]]></d></c>', message: /^f line 1: not well-formed: a CDATA section/ },
    { name: 'an unknown entity in an attribute', text: '<c>\n  <add\n    value="&nbsp;" />\n</c>', message: /^f line 3: <add>: attribute value: unknown entity &nbsp;/ },
    { name: 'a bare & in an attribute', text: '<c a="x & y"/>', message: /^f line 1: <c>: attribute a: a bare "&" must be written &amp;/ },
    { name: 'a raw < in an attribute', text: '<c>\n<d a="1 < 2"/></c>', message: /^f line 2: <d>: attribute a: "<" must be written &lt;/ },
    { name: 'an unknown entity in text', text: '<c>\n<t>&lol;</t></c>', message: /^f line 2: <t>: text: unknown entity &lol;/ },
    { name: 'two root elements', text: '<a/>\n<b/>', message: /^f line 2: not well-formed: a second root element <b>/ },
    { name: 'no element at all', text: '<!-- nothing -->', message: /^f(: | line \d+: )not well-formed/ },
    { name: 'unclosed', text: '<a>\n<b>\n</a>', message: /^f line 3: not well-formed: / },
    { name: 'too large', text: `<a>${'x'.repeat(100)}</a>`, options: { ...CONFIG, maxBytes: 50 }, message: /^f: 107 bytes, over the limit of 50 bytes for a configuration file$/ },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      assert.throws(
        () => parseXml(c.text, 'f', c.options ?? CONFIG),
        (err: unknown) => err instanceof ExmitError && err.code === 1 && !err.message.includes('\n') && c.message.test(err.message),
      );
    });
  }
});

test('a describe callback names the element in reference errors (the catalog passes its element path)', () => {
  assert.throws(
    () => parseXml('<c><d k="v" a="&x;"/></c>', 'f', { ...CATALOG, describe: (el, attr) => `<${el.parent?.name}>/<${el.name} k="${el.rawAttributes.k}">${attr === undefined ? '' : `@${attr}`}` }),
    /^ExmitError: f line 1: <c>\/<d k="v">@a: attribute a: unknown entity &x;/,
  );
});
