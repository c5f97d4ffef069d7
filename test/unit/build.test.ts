import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildFromParts,
  buildsEqual,
  compareBuilds,
  formatBuild,
  normalizeBuild,
  parseBuild,
  parseBuildOrThrow,
  parseBuildPart,
  sameCuLine,
} from '../../src/exchange/build.ts';
import type { Build } from '../../src/exchange/build.ts';
import { ExmitError } from '../../src/errors.ts';

/** Parses a build that the test knows to be valid. */
function b(text: string): Build {
  const build = parseBuild(text);
  assert.ok(build, `test build ${text} should parse`);
  return build;
}

describe('parseBuild', () => {
  const valid: [string, Build][] = [
    ['15.2.1118.20', [15, 2, 1118, 20]],
    ['15.02.1118.025', [15, 2, 1118, 25]],
    ['15.01.1847.003', [15, 1, 1847, 3]],
    ['15.00.1497.002', [15, 0, 1497, 2]],
    ['15.0.847.64', [15, 0, 847, 64]],
    ['15.2.196.0', [15, 2, 196, 0]],
    ['0.0.0.0', [0, 0, 0, 0]],
    ['65535.65535.65535.65535', [65535, 65535, 65535, 65535]],
  ];
  for (const [text, expected] of valid) {
    it(`reads ${text}`, () => assert.deepEqual(parseBuild(text), expected));
  }

  const invalid = [
    '',
    '15.2.1118',
    '15.2.1118.20.1',
    '15.2.1118.x',
    'v15.2.1118.20',
    '-15.2.1118.20',
    '15.2.-1118.20',
    '15.2.1118.20 ',
    ' 15.2.1118.20',
    '15..1118.20',
    '15.2.1118.20.',
    '15.2.1118.65536',
    '15.2.99999999999.1',
    '15.2.1118.2e1',
    '15.2.1118.0x1',
    '15,2,1118,20',
    '１５.2.1118.20',
  ];
  for (const text of invalid) {
    it(`rejects ${JSON.stringify(text)}`, () => assert.equal(parseBuild(text), null));
  }
});

describe('parseBuildPart and buildFromParts', () => {
  const parts: [unknown, number | null][] = [
    [15, 15],
    ['15', 15],
    ['0002', 2],
    [0, 0],
    [65535, 65535],
    [65536, null],
    [-1, null],
    [1.5, null],
    [Number.NaN, null],
    ['', null],
    [' 2', null],
    ['2a', null],
    [null, null],
    [undefined, null],
    [true, null],
  ];
  for (const [value, expected] of parts) {
    it(`part ${String(value)} -> ${String(expected)}`, () => assert.equal(parseBuildPart(value), expected));
  }

  it('takes registry values as numbers or strings', () => {
    assert.deepEqual(buildFromParts(15, '2', 1118, '07'), [15, 2, 1118, 7]);
  });
  it('is null when any part is unusable', () => {
    assert.equal(buildFromParts(15, 2, null, 7), null);
  });
});

describe('formatBuild and normalizeBuild', () => {
  it('formats without padding', () => assert.equal(formatBuild([15, 2, 1118, 20]), '15.2.1118.20'));
  const cases: [string, string | null][] = [
    ['15.02.1118.025', '15.2.1118.25'],
    ['15.01.2507.006', '15.1.2507.6'],
    ['15.2.1544.4', '15.2.1544.4'],
    ['15.2.1544', null],
  ];
  for (const [text, expected] of cases) {
    it(`${text} -> ${String(expected)}`, () => assert.equal(normalizeBuild(text), expected));
  }
});

describe('compareBuilds', () => {
  const cases: [string, string, -1 | 0 | 1][] = [
    ['15.2.1544.4', '15.2.1544.9', -1],
    ['15.2.1544.9', '15.2.1544.4', 1],
    ['15.2.1118.20', '15.02.1118.020', 0],
    // Not string order: 1118 < 986 as text, but newer as a number.
    ['15.2.986.36', '15.2.1118.20', -1],
    ['15.2.1118.9', '15.2.1118.15', -1],
    ['15.1.2507.72', '15.2.221.12', -1],
    ['15.0.1497.48', '15.1.225.16', -1],
    ['15.2.2562.17', '15.2.1748.49', 1],
  ];
  for (const [a, c, sign] of cases) {
    it(`${a} vs ${c} is ${sign}`, () => {
      assert.equal(Math.sign(compareBuilds(b(a), b(c))), sign);
      assert.equal(buildsEqual(b(a), b(c)), sign === 0);
    });
  }

  it('sorts as four integers', () => {
    const sorted = ['15.2.1118.20', '15.2.986.5', '15.2.1118.9', '15.0.1497.2', '15.2.1118.15']
      .map(b)
      .sort(compareBuilds)
      .map(formatBuild);
    assert.deepEqual(sorted, ['15.0.1497.2', '15.2.986.5', '15.2.1118.9', '15.2.1118.15', '15.2.1118.20']);
  });
});

describe('sameCuLine', () => {
  it('matches builds of one CU', () => assert.equal(sameCuLine(b('15.2.1118.7'), b('15.2.1118.40')), true));
  it('separates CUs', () => assert.equal(sameCuLine(b('15.2.1118.7'), b('15.2.1258.12')), false));
  it('separates products', () => assert.equal(sameCuLine(b('15.1.225.42'), b('15.2.225.42')), false));
});

describe('parseBuildOrThrow', () => {
  it('returns the build', () => assert.deepEqual(parseBuildOrThrow('15.02.1118.020', 'catalog'), [15, 2, 1118, 20]));
  it('throws an input error naming the source', () => {
    assert.throws(
      () => parseBuildOrThrow('15.2.1118', 'catalog.xml, proxylogon-cookie'),
      (error: unknown) =>
        error instanceof ExmitError && error.code === 1 && error.message.includes('catalog.xml, proxylogon-cookie') && error.message.includes('15.2.1118'),
    );
  });
});
