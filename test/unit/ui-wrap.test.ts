// Readable at 80 columns: wrapping with a hanging indent that never breaks a word, the width of a
// terminal that reports 0 columns, and colour decided per stream.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { streamColor, terminalWidth, wrapText } from '../../src/ui.ts';

describe('wrapText', () => {
  it('wraps at the width with the first and the hanging prefix, never past the width when words fit', () => {
    const text = 'build 15.2.1118.15 is before the fix 15.2.1118.20 (Exchange 2019 CU12 Nov22SU); no rule that blocks the published exploit takes effect at /autodiscover';
    const lines = wrapText(text, 40, '  1. ', '     ');
    assert.ok(lines.length > 2);
    for (const l of lines) assert.ok(l.length <= 40, `${l.length}: ${l}`);
    assert.ok(lines[0]?.startsWith('  1. build'));
    for (const l of lines.slice(1)) assert.match(l, /^ {5}\S/);
    assert.equal(lines.map((l) => l.trim().replace(/^1\. /, '')).join(' '), text);
  });
  it('never breaks a word: a word longer than the line stands alone', () => {
    const long = '/autodiscover/autodiscover.json?@zdi/PowerShell?serializationLevel=Full';
    const lines = wrapText(`see ${long} here`, 30, '', '  ');
    assert.deepEqual(lines, ['see', `  ${long}`, '  here']);
  });
  it('collapses runs of spaces and newlines; empty text gives one prefix line', () => {
    assert.deepEqual(wrapText('a  b\n c', 80, '> '), ['> a b c']);
    assert.deepEqual(wrapText('', 80, '> '), ['> ']);
  });
  it('a width smaller than the prefix still puts one word per line', () => {
    assert.deepEqual(wrapText('one two', 3, '    '), ['    one', '    two']);
  });
});

describe('terminal width and colour per stream', () => {
  it('80 when the terminal reports nothing or 0 columns', () => {
    assert.equal(terminalWidth(undefined), 80);
    assert.equal(terminalWidth(0), 80);
    assert.equal(terminalWidth(120), 120);
  });
  it('colour on a stream only when wanted and that stream is a terminal (or FORCE_COLOR)', () => {
    assert.equal(streamColor(true, true, {}), true);
    assert.equal(streamColor(true, false, {}), false, 'stdout to a file: no escape codes');
    assert.equal(streamColor(false, true, {}), false);
    assert.equal(streamColor(true, false, { FORCE_COLOR: '1' }), true);
  });
});
