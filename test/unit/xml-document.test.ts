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

/** fast-xml-parser's own start and end indexes and raw attributes for every element, in document order: an oracle independent of the front end's lexer. */
function oracle(text: string): { name: string; start: number; end: number; attributes: Record<string, unknown> }[] {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const shift = body === text ? 0 : 1;
  const parsed = new XMLParser({ preserveOrder: true, ignoreAttributes: false, attributeNamePrefix: '', parseAttributeValue: false, processEntities: false, ignoreDeclaration: true, ignorePiTags: true, captureMetaData: true }).parse(body);
  const meta = XMLParser.getMetaDataSymbol() as unknown as symbol;
  const out: { name: string; start: number; end: number; attributes: Record<string, unknown> }[] = [];
  const walk = (nodes: unknown): void => {
    for (const node of nodes as Record<string | symbol, unknown>[]) {
      const name = Object.keys(node).find((k) => k !== ':@' && k !== '#text');
      if (name === undefined) continue;
      const m = node[meta] as { startIndex: number; endIndex: number };
      out.push({ name, start: m.startIndex + shift, end: m.endIndex + shift, attributes: { ...(node[':@'] as Record<string, unknown> | undefined) } });
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
    all(doc.root).map((e) => ({ name: e.name, start: e.start, end: e.end, attributes: { ...e.rawAttributes } })),
    oracle(text),
    `${doc.file}: offsets and raw attributes agree with fast-xml-parser's`,
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

test('declarations, processing instructions and comments in the prolog and after the root are accepted', () => {
  for (const text of [
    '<?xml version="1.0"?><a/>',
    "<?xml version='1.0' encoding='utf-8' standalone='yes' ?>\n<a/>",
    '\uFEFF<?xml version="1.0" encoding="UTF-8"?>\r\n<!-- c -->\r\n<?xml-stylesheet href="x"?>\r\n<a><?pi?></a>\r\n<!-- after --><?after data?>\r\n',
  ]) {
    assert.equal(parseXml(text, 'f', CONFIG).root.name, 'a', text);
  }
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
    { name: 'an unclosed root at the end', text: '<a>\n<b/>\n', message: /^f line 1: not well-formed: .*'a'/ },
    { name: 'a start tag cut off at the end', text: '<a>\n<b x="1"', message: /^f line 1: not well-formed: / },
    { name: 'a mismatched close tag', text: '<a>\n<b>\n</c></a>', message: /^f line 3: not well-formed: .*'b'.*'c'/ },
    { name: 'a close tag that differs in case', text: '<a>\n<b></B></a>', message: /^f line 2: not well-formed: / },
    { name: 'a close tag with nothing open', text: '<a/>\n</a>', message: /^f line 2: not well-formed: / },
    { name: 'an attribute without quotes', text: '<a>\n<b x=1/></a>', message: /^f line 2: not well-formed: .*'x'/ },
    { name: 'an attribute without a value', text: '<a>\n<b x/></a>', message: /^f line 2: not well-formed: .*'x'/ },
    { name: 'attributes without space between', text: '<a>\n<b x="1"y="2"/></a>', message: /^f line 2: not well-formed: .*'y'/ },
    { name: 'an attribute given twice', text: '<a>\n<b x="1" x="2"/></a>', message: /^f line 2: not well-formed: .*'x' is repeated/ },
    { name: 'an attribute value never closed', text: '<a>\n<b x="1/></a>\n', message: /^f line 2: not well-formed: / },
    { name: 'a BOM inside an element name', text: '<a>\n<re\uFEFFmove/></a>', message: /^f line 2: not well-formed: unexpected markup/ },
    { name: 'a BOM inside an attribute name', text: '<a>\n<b na\uFEFFme="x"/></a>', message: /^f line 2: not well-formed: unexpected markup/ },
    { name: 'two roots, the first closed by a close tag', text: '<a></a>\n<b></b>', message: /^f line 2: not well-formed: / },
    { name: 'two roots after a comment', text: '<a/>\n<!-- c -->\n<a/>', message: /^f line 3: not well-formed: a second root element <a>/ },
    { name: 'text after a closed root', text: '<a></a>\ntext', message: /^f line 2: not well-formed: / },
    { name: 'text after a self-closing root', text: '<a/>\ntext', message: /^f line 2: not well-formed: unexpected markup/ },
    { name: 'a CDATA section after the root', text: '<a/>\n<![CDATA[x]]>', message: /^f line 2: not well-formed: unexpected markup/ },
    { name: 'a comment after the root never closed', text: '<a/>\n\n<!-- x', message: /^f line 3: not well-formed: a comment is not closed/ },
    { name: 'a comment in an element never closed', text: '<a>\n<!-- x </a>', message: /^f line \d+: not well-formed/ },
    { name: 'a processing instruction never closed', text: '<a/>\n<?pi x', message: /^f line 2: not well-formed: a processing instruction is not closed/ },
    { name: 'a processing instruction without a target', text: '<a>\n<? x?></a>', message: /^f line 2: not well-formed: unexpected markup/ },
    { name: 'a processing instruction with a quote in its target', text: "<?x'ml version=\"1.0\"?>\n<a/>", message: /^f line 1: not well-formed: unexpected markup/ },
    { name: 'a second XML declaration', text: '<a>\n<?xml version="1.0"?></a>', message: /^f line 2: not well-formed: / },
    { name: 'a broken XML declaration', text: '<?xml versi"on="1.0" encoding="UTF-8"?>\n<a/>', message: /^f line 1: not well-formed: the XML declaration must read/ },
    { name: 'an XML declaration with an unknown pseudo-attribute', text: '<?xml version="1.0" charset="x"?>\n<a/>', message: /^f line 1: not well-formed: the XML declaration must read/ },
    { name: 'markup declaration debris', text: '<a>\n<!/>-- x --></a>', message: /^f line 2: not well-formed: unexpected markup/ },
    { name: 'an element name that is not a name', text: '<a>\n<1b/></a>', message: /^f line 2: not well-formed: .*'1b'/ },
    { name: 'a bare & in text', text: '<a>\n<b>x & y</b></a>', message: /^f line 2: not well-formed: / },
    { name: 'a character reference to no character in text', text: '<a>\n<b>&#0;</b></a>', message: /^f line 2: <b>: text: &#0; is not a character/ },
    { name: 'a surrogate character reference in an attribute', text: '<a>\n<b v="&#xD800;"/></a>', message: /^f line 2: <b>: attribute v: &#xD800; is not a character/ },
    { name: 'a parent text problem comes before a child attribute problem', text: '<a>\n<b v="&x;"/>&y;</a>', message: /^f line 1: <a>: text: unknown entity &y;/ },
    { name: 'the first bad attribute of an element is the one named', text: '<a>\n<b v="&x;" w="&y;"/></a>', message: /^f line 2: <b>: attribute v: unknown entity &x;/ },
    { name: 'a structural error comes before a reference problem', text: '<a v="&x;"/>\n<b/>', message: /^f line 2: not well-formed: a second root element <b>/ },
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

test('corrupted real files either fail with one line naming the file or parse into elements fast-xml-parser agrees with', () => {
  const seeds = configFixtures().filter((f) => f.text.length < 20_000);
  const pieces = ['<', '>', '&', '"', "'", '/', '=', '!', '?', '-', ' ', '\n', '\r', '\uFEFF', ']]>', '<!--', '-->', '<![CDATA[', '<?', '?>', '</', '/>', '&amp;', '&x;', '<a>', '</a>'];
  let state = 20_260_101;
  const random = (n: number): number => {
    state = (state * 1_103_515_245 + 12_345) % 2_147_483_648;
    return state % n;
  };
  let refused = 0;
  let parsed = 0;
  for (let round = 0; round < 400; round++) {
    const seed = seeds[random(seeds.length)] as (typeof seeds)[number];
    let text = seed.text;
    for (let edit = random(3); edit >= 0; edit--) {
      const at = random(text.length + 1);
      text = random(2) === 0 ? text.slice(0, at) + text.slice(at + 1 + random(3)) : text.slice(0, at) + pieces[random(pieces.length)] + text.slice(at);
    }
    let doc: XmlDocument;
    try {
      doc = parseXml(text, seed.name, CONFIG);
    } catch (err) {
      assert.ok(err instanceof ExmitError && err.code === 1 && !err.message.includes('\n') && err.message.startsWith(`${seed.name}`), `round ${round}: ${String(err)}`);
      refused++;
      continue;
    }
    checkOffsets(doc);
    parsed++;
  }
  assert.ok(refused > 100 && parsed > 100, `refused ${refused}, parsed ${parsed}`);
});

test('a describe callback names the element in reference errors (the catalog passes its element path)', () => {
  assert.throws(
    () => parseXml('<c><d k="v" a="&x;"/></c>', 'f', { ...CATALOG, describe: (el, attr) => `<${el.parent?.name}>/<${el.name} k="${el.rawAttributes.k}">${attr === undefined ? '' : `@${attr}`}` }),
    /^ExmitError: f line 1: <c>\/<d k="v">@a: attribute a: unknown entity &x;/,
  );
});
