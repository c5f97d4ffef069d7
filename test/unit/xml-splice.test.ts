import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXml, type ParseXmlOptions, type XmlDocument, type XmlElement } from '../../src/xml/document.ts';
import {
  childIndent,
  ensurePath,
  findPath,
  indentOf,
  indentUnitOf,
  insertAtPath,
  insertChild,
  newlineOf,
  removeElement,
  revertEdit,
  type Position,
  type Splice,
} from '../../src/xml/splice.ts';
import { configFixtures, isBroken } from '../support/config-fixtures.ts';

const CONFIG: ParseXmlOptions = { kind: 'configuration file', maxBytes: 32 * 1024 * 1024, allowCdata: true };

const ONE_LINE = '<add name="exmit x" value="a &amp; b" />';
const RULE = `
  <rule name="exmit block" stopProcessing="true">
    <match url=".*" />
    <conditions logicalGrouping="MatchAny">
      <add input="{UrlDecode:{REQUEST_URI}}" pattern="(?=.*autodiscover)(?=.*powershell)" />
    </conditions>
    <action type="AbortRequest" />
  </rule>
`;

function parse(text: string, file = 'f.config'): XmlDocument {
  return parseXml(text, file, CONFIG);
}

function all(el: XmlElement): XmlElement[] {
  return [el, ...el.children.flatMap(all)];
}

/** Element names from the root down to el. */
function pathOf(el: XmlElement): string {
  const names: string[] = [];
  for (let e: XmlElement | null = el; e !== null; e = e.parent) names.unshift(e.name);
  return names.join('/');
}

function variants(text: string): { name: string; text: string }[] {
  const lf = text.replace(/\r\n/g, '\n');
  return [
    { name: 'LF', text: lf },
    { name: 'CRLF', text: lf.replace(/\n/g, '\r\n') },
    { name: 'tabs', text: lf.replace(/^((?: {2})+)/gm, (lead: string) => '\t'.repeat(lead.length / 2)) },
  ];
}

/** Checks one insert: the result parses, holds the new element where asked with the child indentation, the file's newline style, no byte outside the edit changed, and revert gives the original. */
function checkInsert(text: string, parent: XmlElement, fragment: string, position: Position, label: string, before?: XmlDocument): Splice & { after: XmlDocument } {
  const result = insertChild(text, parent, fragment, position);
  const { edit } = result;
  assert.match(edit.removed, /^\s*(\/>)?$/, `${label}: only whitespace or the "/>" of a self-closing parent is replaced`);
  assert.equal(result.text, text.slice(0, edit.start) + edit.inserted + text.slice(edit.start + edit.removed.length));
  const nl = newlineOf(text);
  if (nl === '\r\n') assert.doesNotMatch(edit.inserted, /(^|[^\r])\n/, `${label}: CRLF kept`);
  else assert.doesNotMatch(edit.inserted, /\r/, `${label}: LF kept`);

  const after = parse(result.text, label);
  const added = all(after.root).find((e) => e.start === result.at);
  assert.ok(added !== undefined, `${label}: an element starts at ${result.at}`);
  assert.equal(added.name, parse(fragment.trim()).root.name);
  assert.equal(pathOf(added), `${pathOf(parent)}/${added.name}`, `${label}: under the right parent`);
  const siblings = added.parent?.children ?? [];
  const index = siblings.indexOf(added);
  const expected =
    position === 'first' ? 0 : position === 'last' ? parent.children.length : 'before' in position ? parent.children.indexOf(position.before) : parent.children.indexOf(position.after) + 1;
  assert.equal(index, expected, `${label}: at position ${expected} among ${siblings.length}`);
  const lineStart = Math.max(result.text.lastIndexOf('\n', added.start - 1), result.text.lastIndexOf('\r', added.start - 1)) + 1;
  if (/^[ \t]*$/.test(result.text.slice(lineStart, added.start))) {
    assert.equal(indentOf(result.text, added), childIndent(text, parent), `${label}: child indentation`);
  }
  const fragmentElements = all(parse(fragment.trim()).root).length;
  assert.equal(all(after.root).length, all((before ?? parse(text)).root).length + fragmentElements, `${label}: exactly the fragment's elements were added`);
  assert.equal(revertEdit(result.text, edit), text, `${label}: revert gives the original`);
  return { ...result, after };
}

test('newlineOf, indentUnitOf, indentOf and childIndent read the file as written', () => {
  assert.equal(newlineOf('<a>\r\n<b/>\r\n</a>'), '\r\n');
  assert.equal(newlineOf('<a>\n<b/>\n</a>\r\n'), '\n');
  assert.equal(newlineOf('<a/>'), '\r\n');
  assert.equal(indentUnitOf('<a>\n\t<b>\n\t\t<c/>\n\t</b>\n</a>'), '\t');
  assert.equal(indentUnitOf('<a>\n    <b>\n        <c/>\n    </b>\n</a>'), '    ');
  assert.equal(indentUnitOf('<a/>'), '  ');
  const text = '<a>\n    <b x="1">\n        <c/>\n    </b>\n    <d />\n</a>';
  const doc = parse(text);
  const [b, d] = doc.root.children;
  assert.ok(b !== undefined && d !== undefined);
  assert.equal(indentOf(text, b), '    ');
  assert.equal(childIndent(text, b), '        ', 'from an existing child');
  assert.equal(childIndent(text, d), '        ', "no child: the parent's indentation plus the file's unit");
});

test('inserts into every kind of element of the real IIS files: parse, place, indentation, newlines, exact revert (LF, CRLF, tabs)', () => {
  // The applicationHost.config files of the images differ little from e19's: one of them stands for all (each parse of 175 KB costs).
  const fixtures = configFixtures().filter((f) => !isBroken(f) && (f.text.length < 50_000 || f.name === 'iis/e19-applicationHost.config'));
  let inserts = 0;
  for (const f of fixtures) {
    const large = f.text.length >= 50_000;
    for (const v of variants(f.text).filter((x) => !large || x.name === 'CRLF')) {
      const doc = parse(v.text, f.name);
      const elements = all(doc.root);
      // Parents spread over the file: some with children, some without, the root included.
      const step = Math.max(1, Math.floor(elements.length / (large ? 6 : 10)));
      const parents = elements.filter((_, i) => i % step === 0);
      for (const [p, parent] of parents.entries()) {
        const label = `${f.name} (${v.name}) <${parent.name}> line ${parent.line}`;
        const positions: Position[] = ['first', 'last'];
        const middle = parent.children[Math.floor(parent.children.length / 2)];
        if (middle !== undefined) positions.push({ before: middle }, { after: middle });
        for (const [i, position] of positions.entries()) {
          const fragment = (p + i) % 2 === 0 ? ONE_LINE : RULE;
          const result = checkInsert(v.text, parent, fragment, position, `${label} ${JSON.stringify(typeof position === 'string' ? position : Object.keys(position))}`, doc);
          inserts++;
          // A line-wise insert (whole lines at a line start) is also undone by removing the element.
          if (result.edit.removed === '' && result.edit.inserted.endsWith(newlineOf(v.text))) {
            const added = all(result.after.root).find((e) => e.start === result.at);
            assert.ok(added !== undefined);
            assert.equal(removeElement(result.text, added).text, v.text, `${label}: removeElement undoes a line-wise insert`);
          }
        }
      }
    }
  }
  assert.ok(inserts > 200, `${inserts} inserts checked`);
});

test('a self-closing <rules /> parent is opened up keeping its attributes, and revert restores it exactly', () => {
  for (const nl of ['\n', '\r\n']) {
    for (const unit of ['  ', '    ', '\t']) {
      const text = ['<configuration>', `${unit}<system.webServer>`, `${unit}${unit}<rewrite>`, `${unit}${unit}${unit}<rules  a="1" />`, `${unit}${unit}</rewrite>`, `${unit}</system.webServer>`, '</configuration>', ''].join(nl);
      const doc = parse(text);
      const rules = findPath(doc, [{ name: 'system.webServer' }, { name: 'rewrite' }, { name: 'rules' }]);
      assert.ok(rules !== null && rules.selfClosing);
      const result = checkInsert(text, rules, RULE, 'last', `rules (${JSON.stringify(nl)}, ${JSON.stringify(unit)})`);
      const pad = unit.repeat(3);
      assert.ok(result.text.includes(`${pad}<rules  a="1">${nl}${pad}${unit}<rule name="exmit block" stopProcessing="true">${nl}${pad}${unit}${unit}<match url=".*" />`), result.text);
      assert.ok(result.text.includes(`${nl}${pad}${unit}</rule>${nl}${pad}</rules>${nl}${unit}${unit}</rewrite>`), result.text);
      const after = findPath(parse(result.text), [{ name: 'system.webServer' }, { name: 'rewrite' }, { name: 'rules' }]);
      assert.deepEqual(after?.attributes, { a: '1' });
    }
  }
});

test('an empty parent written on one line and children on one line take inline inserts that revert exactly', () => {
  const text = '<configuration>\n  <rules></rules>\n  <list><a/><b/></list>\n  <x>  </x>\n</configuration>\n';
  const doc = parse(text);
  const [rules, list, x] = doc.root.children;
  assert.ok(rules !== undefined && list !== undefined && x !== undefined);
  const r = checkInsert(text, rules, ONE_LINE, 'last', 'empty one-line parent');
  assert.equal(r.text, `<configuration>\n  <rules>\n    ${ONE_LINE}\n  </rules>\n  <list><a/><b/></list>\n  <x>  </x>\n</configuration>\n`);
  const second = list.children[1];
  assert.ok(second !== undefined);
  assert.equal(checkInsert(text, list, '<n/>', { before: second }, 'inline before').text, text.replace('<a/><b/>', '<a/><n/><b/>'));
  assert.equal(checkInsert(text, list, '<n/>', { after: second }, 'inline after').text, text.replace('<a/><b/>', '<a/><b/><n/>'));
  assert.equal(checkInsert(text, x, '<n/>', 'first', 'blank one-line parent').text, text.replace('<x>  </x>', '<x>\n    <n/>\n  </x>'));
});

test('ensurePath creates a missing <location> with system.webServer/rewrite/rules in applicationHost.config; inserts and reverts in reverse order restore every byte', () => {
  const apphost = configFixtures().find((f) => f.name === 'iis/e19-applicationHost.config');
  assert.ok(apphost !== undefined);
  for (const v of variants(apphost.text)) {
    const path = [{ name: 'location', attributes: { path: 'Default Web Site/exmit & co' } }, { name: 'system.webServer' }, { name: 'rewrite' }, { name: 'rules' }];
    const doc = parse(v.text);
    assert.equal(findPath(doc, path.slice(0, 1)), null);
    const created = ensurePath(v.text, doc, path);
    assert.ok(created !== null);
    assert.equal(created.edit.removed, '');
    const doc2 = parse(created.text);
    const rules = findPath(doc2, path);
    assert.ok(rules !== null && rules.selfClosing, 'the new rules element is self-closing');
    const location = rules.parent?.parent?.parent;
    assert.ok(location !== undefined && location !== null);
    assert.equal(location.parent, doc2.root);
    assert.equal(doc2.root.children[doc2.root.children.length - 1], location, 'the new location is the last child of <configuration>');
    assert.equal(indentOf(created.text, location), childIndent(v.text, doc.root));
    assert.equal(ensurePath(created.text, doc2, path), null, 'nothing to create the second time');
    const inserted = insertChild(created.text, rules, RULE, 'last');
    assert.ok(findPath(parse(inserted.text), [...path, { name: 'rule', attributes: { name: 'exmit block' } }]) !== null);
    const back = revertEdit(inserted.text, inserted.edit);
    assert.equal(back, created.text);
    assert.equal(revertEdit(back ?? '', created.edit), v.text, `${v.name}: exact original`);
    // The same in one edit, and into an existing location.
    const once = insertAtPath(v.text, doc, path, RULE);
    assert.ok(findPath(parse(once.text), [...path, { name: 'rule' }]) !== null);
    assert.equal(revertEdit(once.text, once.edit), v.text);
    const existing = [{ name: 'location', attributes: { path: 'Default Web Site' } }, { name: 'system.webServer' }];
    assert.ok(findPath(doc, existing) !== null);
    const deeper = insertAtPath(v.text, doc, [...existing, { name: 'rewrite' }, { name: 'rules' }], ONE_LINE);
    assert.ok(findPath(parse(deeper.text), [...existing, { name: 'rewrite' }, { name: 'rules' }, { name: 'add' }]) !== null);
    assert.equal(revertEdit(deeper.text, deeper.edit), v.text);
  }
});

test('removeElement takes out just that element and its line in a file reformatted since the insert', () => {
  const web = configFixtures().find((f) => f.name === 'iis/e19-wwwroot-web-eems.config');
  assert.ok(web !== undefined);
  const doc = parse(web.text);
  const rules = findPath(doc, [{ name: 'location' }, { name: 'system.webServer' }, { name: 'rewrite' }, { name: 'rules' }]) ?? findPath(doc, [{ name: 'system.webServer' }, { name: 'rewrite' }, { name: 'rules' }]);
  assert.ok(rules !== null);
  const inserted = insertChild(web.text, rules, RULE, { after: rules.children[0] ?? rules });
  // Someone else edits the file: reindents the first line of the root and adds a comment at the end.
  const reformatted = inserted.text.replace('<configuration>', '<configuration >').replace(/<\/configuration>\s*$/, '<!-- edited --></configuration>\n');
  const added = all(parse(reformatted).root).find((e) => e.name === 'rule' && e.attributes.name === 'exmit block');
  assert.ok(added !== undefined);
  assert.equal(revertEdit(reformatted, inserted.edit), null, 'the recorded edit no longer applies where the file changed before it');
  const removed = removeElement(reformatted, added).text;
  assert.equal(removed, web.text.replace('<configuration>', '<configuration >').replace(/<\/configuration>\s*$/, '<!-- edited --></configuration>\n'));
});

test('stale elements and fragments that are not one element are refused', () => {
  const text = '<configuration>\n  <a/>\n</configuration>\n';
  const doc = parse(text);
  const a = doc.root.children[0];
  assert.ok(a !== undefined);
  assert.throws(() => insertChild(`  ${text}`, a, ONE_LINE, 'last'), /parse the text again/);
  assert.throws(() => removeElement(`x${text}`, a), /parse the text again/);
  assert.throws(() => insertChild(text, a, '<a/><b/>', 'last'), /XML fragment line 1: not well-formed XML: a second root element <b>/);
  assert.throws(() => insertChild(text, a, '<a>', 'last'), /XML fragment/);
  assert.throws(() => insertChild(text, doc.root, '<a/>', { before: doc.root }), /not a child of <configuration>/);
});
