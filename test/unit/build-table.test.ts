import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BUILD_TABLE,
  cuEntryOf,
  cuOf,
  entriesOfCu,
  entriesOfProduct,
  findExact,
  isNewerThanTable,
  latestForCu,
  nearestEarlier,
  productOfBuild,
} from '../../src/exchange/build-table.ts';
import { compareBuilds, parseBuild } from '../../src/exchange/build.ts';
import type { Build } from '../../src/exchange/build.ts';
import type { Product } from '../../src/catalog/types.ts';
import { makeBuildTable, parseCsv, renderBuildTable, toIsoDate } from '../../scripts/make-build-table.ts';

const SCRIPT = fileURLToPath(new URL('../../scripts/make-build-table.ts', import.meta.url));
const COMMITTED_JSON = fileURLToPath(new URL('../../src/exchange/build-table.json', import.meta.url));

/** Parses a build that the test knows to be valid. */
function b(text: string): Build {
  const build = parseBuild(text);
  assert.ok(build, `test build ${text} should parse`);
  return build;
}

describe('the generated table', () => {
  it('running the generator gives byte-identical JSON to the committed file, twice', () => {
    const dir = mkdtempSync(join(tmpdir(), 'exmit-build-table-'));
    try {
      const outputs = ['a.json', 'b.json'].map((file) => {
        const out = join(dir, file);
        execFileSync(process.execPath, [SCRIPT, '--out', out], { stdio: 'pipe' });
        return readFileSync(out);
      });
      const committed = readFileSync(COMMITTED_JSON);
      assert.ok(outputs[0]?.equals(committed), 'generator output differs from src/exchange/build-table.json: run npm run build-table');
      assert.ok(outputs[1]?.equals(committed), 'a second run differs');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--check passes on the committed file and fails on a stale one', () => {
    const ok = spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8' });
    assert.equal(ok.status, 0, ok.stderr);
    const stale = spawnSync(process.execPath, [SCRIPT, '--check', '--out', SCRIPT], { encoding: 'utf8' });
    assert.equal(stale.status, 1);
    assert.match(stale.stderr, /out of date/);
  });

  it('holds only 2013, 2016, 2019 and SE, sorted by build, without duplicates or padding', () => {
    assert.deepEqual([...new Set(BUILD_TABLE.map((e) => e.product))], ['2013', '2016', '2019', 'SE']);
    for (let i = 1; i < BUILD_TABLE.length; i++) {
      const [prev, cur] = [BUILD_TABLE[i - 1], BUILD_TABLE[i]];
      assert.ok(prev && cur && compareBuilds(prev.parsed, cur.parsed) < 0, `${prev?.build} before ${cur?.build}`);
    }
    for (const entry of BUILD_TABLE) {
      assert.match(entry.build, /^15\.[0-2]\.[1-9]\d*\.(0|[1-9]\d*)$/);
      assert.match(entry.releaseDate, /^\d{4}-\d{2}-\d{2}$/);
      assert.ok(entry.name.startsWith('Exchange '));
    }
  });
});

describe('findExact', () => {
  const cases: [string, { name: string; cu: string; update: string | null; releaseDate: string; kb: string | null }][] = [
    ['15.0.847.32', { name: 'Exchange 2013 SP1', cu: 'SP1', update: null, releaseDate: '2014-02-25', kb: 'KB2926248' }],
    ['15.0.1395.4', { name: 'Exchange 2013 CU21', cu: 'CU21', update: null, releaseDate: '2018-06-19', kb: 'KB4099855' }],
    ['15.0.1497.48', { name: 'Exchange 2013 CU23 Mar23SU', cu: 'CU23', update: 'Mar23SU', releaseDate: '2023-03-14', kb: 'KB5024296' }],
    ['15.0.1497.2', { name: 'Exchange 2013 CU23', cu: 'CU23', update: null, releaseDate: '2019-06-18', kb: 'KB4489622' }],
    ['15.1.1415.2', { name: 'Exchange 2016 CU8', cu: 'CU8', update: null, releaseDate: '2017-12-19', kb: 'KB4035145' }],
    ['15.1.1847.3', { name: 'Exchange 2016 CU14', cu: 'CU14', update: null, releaseDate: '2019-09-17', kb: 'KB4514140' }],
    ['15.1.2375.37', { name: 'Exchange 2016 CU22 Nov22SU', cu: 'CU22', update: 'Nov22SU', releaseDate: '2022-11-08', kb: 'KB5019758' }],
    ['15.1.2507.44', { name: 'Exchange 2016 CU23 Nov24SUv2', cu: 'CU23', update: 'Nov24SUv2', releaseDate: '2024-11-27', kb: 'KB5049233' }],
    ['15.2.221.12', { name: 'Exchange 2019 RTM', cu: 'RTM', update: null, releaseDate: '2018-10-22', kb: null }],
    ['15.2.1118.15', { name: 'Exchange 2019 CU12 Oct22SU', cu: 'CU12', update: 'Oct22SU', releaseDate: '2022-10-11', kb: 'KB5019076' }],
    ['15.2.1118.20', { name: 'Exchange 2019 CU12 Nov22SU', cu: 'CU12', update: 'Nov22SU', releaseDate: '2022-11-08', kb: 'KB5019758' }],
    ['15.2.1258.12', { name: 'Exchange 2019 CU13 (2023H1)', cu: 'CU13', update: null, releaseDate: '2023-05-03', kb: 'KB5020999' }],
    ['15.2.1544.11', { name: 'Exchange 2019 CU14 Apr24HU', cu: 'CU14', update: 'Apr24HU', releaseDate: '2024-04-23', kb: 'KB5037224' }],
    ['15.2.1544.27', { name: 'Exchange 2019 CU14 May25HU', cu: 'CU14', update: 'May25HU', releaseDate: '2025-05-29', kb: 'KB5057652' }],
    ['15.2.2562.17', { name: 'Exchange SE RTM', cu: 'RTM', update: null, releaseDate: '2025-07-01', kb: 'KB5047155' }],
    ['15.2.2562.43', { name: 'Exchange SE RTM Jun26SU', cu: 'RTM', update: 'Jun26SU', releaseDate: '2026-06-09', kb: 'KB5094139' }],
  ];
  for (const [build, expected] of cases) {
    it(`${build} is ${expected.name}`, () => {
      const entry = findExact(b(build));
      assert.ok(entry);
      assert.deepEqual(
        { name: entry.name, cu: entry.cu, update: entry.update, releaseDate: entry.releaseDate, kb: entry.kb, build: entry.build },
        { ...expected, build },
      );
    });
  }

  it('finds a zero-padded build', () => assert.equal(findExact(b('15.02.1118.020'))?.name, 'Exchange 2019 CU12 Nov22SU'));
  it('is null for a build not in the list', () => assert.equal(findExact(b('15.2.1118.22')), null));
  it('drops 2007 and 2010', () => assert.equal(findExact(b('14.3.468.0')), null));
});

describe('productOfBuild', () => {
  const cases: [string, string | null][] = [
    ['15.0.1497.48', '2013'],
    ['15.1.2507.72', '2016'],
    ['15.2.221.12', '2019'],
    ['15.2.1748.49', '2019'],
    ['15.2.2561.99', '2019'],
    ['15.2.2562.0', 'SE'],
    ['15.2.2562.46', 'SE'],
    ['15.2.3000.1', 'SE'],
    ['15.3.100.1', null],
    ['14.3.513.0', null],
  ];
  for (const [build, product] of cases) {
    it(`${build} -> ${String(product)}`, () => assert.equal(productOfBuild(b(build)), product));
  }

  it('takes the SE boundary from the list', () => {
    const firstSe = entriesOfProduct('SE')[0];
    assert.ok(firstSe);
    const line = firstSe.parsed[2];
    assert.equal(productOfBuild([15, 2, line, 0]), 'SE');
    assert.equal(productOfBuild([15, 2, line - 1, 65535]), '2019');
  });
});

describe('cuOf and cuEntryOf', () => {
  const cases: [string, string | null, string | null][] = [
    ['15.2.1118.7', 'CU12', 'Exchange 2019 CU12'],
    ['15.2.1118.20', 'CU12', 'Exchange 2019 CU12'],
    ['15.2.1118.99', 'CU12', 'Exchange 2019 CU12'],
    ['15.02.1118.025', 'CU12', 'Exchange 2019 CU12'],
    ['15.0.847.64', 'SP1', 'Exchange 2013 SP1'],
    ['15.0.1497.48', 'CU23', 'Exchange 2013 CU23'],
    ['15.1.2507.16', 'CU23', 'Exchange 2016 CU23'],
    ['15.2.221.18', 'RTM', 'Exchange 2019 RTM'],
    ['15.2.1544.14', 'CU14', 'Exchange 2019 CU14'],
    ['15.2.2562.43', 'RTM', 'Exchange SE RTM'],
    // 2016 Preview and RTM share the 225 line: the newest CU row at or before the build wins.
    ['15.1.225.16', 'Preview', 'Exchange 2016 Preview'],
    ['15.1.225.42', 'RTM', 'Exchange 2016 RTM'],
    ['15.1.225.50', 'RTM', 'Exchange 2016 RTM'],
    ['15.2.1200.1', null, null],
    ['15.2.1900.1', null, null],
  ];
  for (const [build, cu, name] of cases) {
    it(`${build} -> ${String(cu)}`, () => {
      assert.equal(cuOf(b(build)), cu);
      assert.equal(cuEntryOf(b(build))?.name ?? null, name);
    });
  }
});

describe('nearestEarlier', () => {
  const cases: [string, string | null][] = [
    ['15.2.1118.20', 'Exchange 2019 CU12 Nov22SU'],
    ['15.2.1118.22', 'Exchange 2019 CU12 Jan23SU'],
    ['15.2.1200.1', 'Exchange 2019 CU12 Nov23SU'],
    ['15.2.1900.1', 'Exchange 2019 CU15 Aug26SU'],
    // On SE's line but before SE RTM: an SE build, which never takes a 2019 name.
    ['15.2.2562.16', null],
    ['15.2.2561.1', 'Exchange 2019 CU15 Aug26SU'],
    ['15.2.2600.1', 'Exchange SE RTM Aug26SU'],
    ['15.1.2507.70', 'Exchange 2016 CU23 Jun26SU'],
    ['15.0.1497.50', 'Exchange 2013 CU23 Mar23SU'],
    ['15.2.100.0', null],
    ['15.3.1.1', null],
  ];
  for (const [build, name] of cases) {
    it(`${build} -> ${String(name)}`, () => assert.equal(nearestEarlier(b(build))?.name ?? null, name));
  }

  it('never crosses products', () => {
    assert.equal(nearestEarlier(b('15.2.2562.16')), null);
    assert.equal(nearestEarlier(b('15.2.2561.1'))?.product, '2019');
    assert.equal(nearestEarlier(b('15.2.2600.1'))?.product, 'SE');
  });
});

describe('latestForCu and entriesOfCu', () => {
  const cases: [Product, string, string | null, string | null][] = [
    ['2013', 'SP1', 'Exchange 2013 SP1 Mar21SU', '15.0.847.64'],
    ['2013', 'CU21', 'Exchange 2013 CU21 Mar21SU', '15.0.1395.12'],
    ['2013', 'CU23', 'Exchange 2013 CU23 Mar23SU', '15.0.1497.48'],
    ['2016', 'CU8', 'Exchange 2016 CU8 Mar21SU', '15.1.1415.10'],
    ['2016', 'CU22', 'Exchange 2016 CU22 Nov22SU', '15.1.2375.37'],
    ['2016', 'CU23', 'Exchange 2016 CU23 Aug26SU', '15.1.2507.72'],
    ['2019', 'RTM', 'Exchange 2019 RTM Mar21SU', '15.2.221.18'],
    ['2019', 'CU12', 'Exchange 2019 CU12 Nov23SU', '15.2.1118.40'],
    ['2019', 'CU14', 'Exchange 2019 CU14 Aug26SU', '15.2.1544.44'],
    ['SE', 'RTM', 'Exchange SE RTM Aug26SU', '15.2.2562.46'],
    ['2019', 'CU99', null, null],
    ['2013', 'CU12', 'Exchange 2013 CU12', '15.0.1178.4'],
  ];
  for (const [product, cu, name, build] of cases) {
    it(`${product} ${cu} -> ${String(name)}`, () => {
      const latest = latestForCu(product, cu);
      assert.equal(latest?.name ?? null, name);
      assert.equal(latest?.build ?? null, build);
    });
  }

  it('lists a CU then its updates in order', () => {
    assert.deepEqual(
      entriesOfCu('2019', 'CU14').map((e) => e.update),
      [null, 'Mar24SU', 'Apr24HU', 'Nov24SU', 'Nov24SUv2', 'Apr25HU', 'May25HU', 'Aug25SU', 'Sep25HU', 'Oct25SU', 'Dec25SU', 'Feb26SU', 'Jun26SU', 'Jul26SU', 'Aug26SU'],
    );
  });

  it('keeps 2019 RTM and SE RTM apart', () => {
    assert.ok(entriesOfCu('SE', 'RTM').every((e) => e.product === 'SE' && e.name.startsWith('Exchange SE RTM')));
    assert.ok(entriesOfCu('2019', 'RTM').every((e) => e.name.startsWith('Exchange 2019 RTM')));
  });
});

describe('isNewerThanTable', () => {
  const cases: [string, boolean][] = [
    ['15.2.1748.99', false],
    ['15.2.1749.1', true],
    ['15.2.1200.1', false],
    ['15.2.2562.99', false],
    ['15.2.2563.1', true],
    ['15.1.2508.1', true],
    ['15.0.1498.1', true],
    ['15.0.1497.99', false],
    ['15.3.1.1', false],
  ];
  for (const [build, expected] of cases) {
    it(`${build} -> ${expected}`, () => assert.equal(isNewerThanTable(b(build)), expected));
  }
});

describe('make-build-table on the list\'s quirks', () => {
  const csv = [
    '\uFEFFProduct Name,Build Number,Date,KB,Blog',
    'Exchange 2010 SP3 RU29,14.03.0468.000,7/9/2019,KB4509410,',
    'Exchange 2019 CU12 Nov22SU,15.2.1118.20,11/8/2022,KB5019758,"https://example.test/a,b"',
    'Exchange 2016 CU14,15.01.1847.003,9/17/2019,KB4514140,',
    'Exchange 2019 CU12 Nov22SU,15.02.1118.020,11/08/2022,KB5019758,',
    '',
    'Product Name,Build Number,Date,KB,Blog',
    'Exchange SE RTM Aug25SU,15.2.2562.20,8/12/2025,KB5063224,',
    'Exchange 2019 CU14 Nov24SUv2,15.2.1544.14,11/27/2024,KB5049233,',
    'Exchange 2013 SP1,15.0.847.32,2/25/2014,KB2926248,',
    'Exchange 2019 RTM,15.2.221.12,10/22/2018,,',
    'Exchange 2019 CU13 (2023H1),15.2.1258.12,5/3/2023,KB5020999,',
    'Exchange 2007 RTM,8.0.685.25,3/8/2007,,',
  ].join('\r\n');

  it('keeps 2013-SE, unpads, dedupes, sorts and splits names', () => {
    assert.deepEqual(makeBuildTable(csv), [
      { product: '2013', name: 'Exchange 2013 SP1', build: '15.0.847.32', cu: 'SP1', update: null, releaseDate: '2014-02-25', kb: 'KB2926248' },
      { product: '2016', name: 'Exchange 2016 CU14', build: '15.1.1847.3', cu: 'CU14', update: null, releaseDate: '2019-09-17', kb: 'KB4514140' },
      { product: '2019', name: 'Exchange 2019 RTM', build: '15.2.221.12', cu: 'RTM', update: null, releaseDate: '2018-10-22', kb: null },
      { product: '2019', name: 'Exchange 2019 CU12 Nov22SU', build: '15.2.1118.20', cu: 'CU12', update: 'Nov22SU', releaseDate: '2022-11-08', kb: 'KB5019758' },
      { product: '2019', name: 'Exchange 2019 CU13 (2023H1)', build: '15.2.1258.12', cu: 'CU13', update: null, releaseDate: '2023-05-03', kb: 'KB5020999' },
      { product: '2019', name: 'Exchange 2019 CU14 Nov24SUv2', build: '15.2.1544.14', cu: 'CU14', update: 'Nov24SUv2', releaseDate: '2024-11-27', kb: 'KB5049233' },
      { product: 'SE', name: 'Exchange SE RTM Aug25SU', build: '15.2.2562.20', cu: 'RTM', update: 'Aug25SU', releaseDate: '2025-08-12', kb: 'KB5063224' },
    ]);
  });

  it('renders the same text whatever the input order', () => {
    const lines = csv.split('\r\n');
    const reversed = [lines[0] ?? '', ...lines.slice(1).reverse()].join('\n');
    assert.equal(renderBuildTable(makeBuildTable(reversed)), renderBuildTable(makeBuildTable(csv)));
  });

  const broken: [string, string, RegExp][] = [
    ['a duplicate build with another name', 'Exchange 2019 CU12 Nov22SUv2,15.2.1118.20,11/8/2022,KB5019758,', /listed again/],
    ['a build of another product', 'Exchange 2016 CU23,15.2.2507.6,4/20/2022,KB5011155,', /does not belong to Exchange 2016/],
    ['a three-part build', 'Exchange 2016 CU23,15.1.2507,4/20/2022,KB5011155,', /not four numbers/],
    ['an unreadable name', 'Exchange 2019 CU12 November,15.2.1118.7,4/20/2022,KB5011156,', /cannot read "November"/],
    ['an impossible date', 'Exchange 2019 CU12,15.2.1118.7,2/30/2022,KB5011156,', /does not exist/],
  ];
  for (const [what, line, message] of broken) {
    it(`fails loudly on ${what}`, () => assert.throws(() => makeBuildTable(`${csv}\r\n${line}`), message));
  }

  it('reads quoted fields', () => {
    assert.deepEqual(parseCsv('a,"b,""c""",d\r\ne,f,g'), [
      ['a', 'b,"c"', 'd'],
      ['e', 'f', 'g'],
    ]);
  });

  const dates: [string, string][] = [
    ['3/2/2021', '2021-03-02'],
    ['12/09/2014', '2014-12-09'],
    ['02/14/2023', '2023-02-14'],
    ['2024-02-29', '2024-02-29'],
  ];
  for (const [text, iso] of dates) {
    it(`date ${text} -> ${iso}`, () => assert.equal(toIsoDate(text, 'test'), iso));
  }
});
