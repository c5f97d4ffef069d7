// Bytes to text and back: every shape a configuration file comes in is written back byte for byte.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeText, encodeText, newlineOf, sha256Of } from '../../src/text/encoding.ts';

function utf16(text: string, big: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    out.push(...(big ? [unit >> 8, unit & 0xff] : [unit & 0xff, unit >> 8]));
  }
  return out;
}

const xml = '<?xml version="1.0" encoding="UTF-8"?>\r\n<configuration>\r\n  <system.webServer/>\r\n</configuration>\r\n';
const shapes: { name: string; bytes: Uint8Array; encoding: string; bom: boolean; newline: string; text: string }[] = [
  { name: 'UTF-8 with BOM, CRLF', bytes: new Uint8Array([0xef, 0xbb, 0xbf, ...Buffer.from(xml)]), encoding: 'utf-8', bom: true, newline: '\r\n', text: xml },
  { name: 'UTF-8 without BOM, LF', bytes: new Uint8Array(Buffer.from(xml.replace(/\r\n/g, '\n'))), encoding: 'utf-8', bom: false, newline: '\n', text: xml.replace(/\r\n/g, '\n') },
  { name: 'UTF-16LE with BOM', bytes: new Uint8Array([0xff, 0xfe, ...utf16(xml, false)]), encoding: 'utf-16le', bom: true, newline: '\r\n', text: xml },
  { name: 'UTF-16BE with BOM', bytes: new Uint8Array([0xfe, 0xff, ...utf16(xml, true)]), encoding: 'utf-16be', bom: true, newline: '\r\n', text: xml },
  { name: 'UTF-16LE without BOM (starts with "<")', bytes: new Uint8Array(utf16(xml, false)), encoding: 'utf-16le', bom: false, newline: '\r\n', text: xml },
  { name: 'no trailing newline', bytes: new Uint8Array(Buffer.from('<configuration>\r\n</configuration>')), encoding: 'utf-8', bom: false, newline: '\r\n', text: '<configuration>\r\n</configuration>' },
  { name: 'mixed newlines', bytes: new Uint8Array(Buffer.from('<a>\r\n<b/>\n</a>\r\n')), encoding: 'utf-8', bom: false, newline: 'mixed', text: '<a>\r\n<b/>\n</a>\r\n' },
  { name: 'one line, no newline at all', bytes: new Uint8Array(Buffer.from('<configuration/>')), encoding: 'utf-8', bom: false, newline: 'none', text: '<configuration/>' },
  { name: 'non-ASCII text (UTF-8)', bytes: new Uint8Array(Buffer.from('<a v="Zürich ✓ 𝄞"/>\n')), encoding: 'utf-8', bom: false, newline: '\n', text: '<a v="Zürich ✓ 𝄞"/>\n' },
  { name: 'non-ASCII text (UTF-16LE)', bytes: new Uint8Array([0xff, 0xfe, ...utf16('<a v="Zürich ✓ 𝄞"/>\r\n', false)]), encoding: 'utf-16le', bom: true, newline: '\r\n', text: '<a v="Zürich ✓ 𝄞"/>\r\n' },
  { name: 'empty file', bytes: new Uint8Array([]), encoding: 'utf-8', bom: false, newline: 'none', text: '' },
  { name: 'a BOM and nothing else', bytes: new Uint8Array([0xef, 0xbb, 0xbf]), encoding: 'utf-8', bom: true, newline: 'none', text: '' },
];

describe('decodeText and encodeText', () => {
  for (const shape of shapes) {
    it(`${shape.name}: decoded as ${shape.encoding}${shape.bom ? ' with BOM' : ''}, and encode(decode(b)) is b`, () => {
      const decoded = decodeText(shape.bytes);
      assert.equal(decoded.text, shape.text);
      assert.equal(decoded.encoding, shape.encoding);
      assert.equal(decoded.bom, shape.bom);
      assert.equal(decoded.newline, shape.newline);
      const again = encodeText(decoded.text, decoded);
      assert.deepEqual(Buffer.from(again), Buffer.from(shape.bytes));
      assert.equal(sha256Of(again), sha256Of(shape.bytes));
    });
  }

  it('text changed by exmit keeps the file\'s newline style', () => {
    const format = decodeText(new Uint8Array(Buffer.from('<a>\r\n</a>\r\n')));
    assert.equal(Buffer.from(encodeText('<a>\n<b/>\n</a>\r\n', format)).toString(), '<a>\r\n<b/>\r\n</a>\r\n');
    const lf = decodeText(new Uint8Array(Buffer.from('<a>\n</a>\n')));
    assert.equal(Buffer.from(encodeText('<a>\r\n<b/>\n</a>\n', lf)).toString(), '<a>\n<b/>\n</a>\n');
  });

  it('newlineOf tells the styles apart', () => {
    assert.equal(newlineOf('a\r\nb\r\n'), '\r\n');
    assert.equal(newlineOf('a\nb'), '\n');
    assert.equal(newlineOf('a\r\nb\n'), 'mixed');
    assert.equal(newlineOf('ab'), 'none');
  });

  it('sha256Of is the lower-case hex SHA-256', () => {
    assert.equal(sha256Of(new Uint8Array(Buffer.from('abc'))), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});
