import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import { PRODUCTS } from '../../src/catalog/types.ts';
import type { FixedUpdate, Mitigation, Product, ProductFix } from '../../src/catalog/types.ts';
import { parseBuild } from '../../src/exchange/build.ts';
import { entriesOfCu, entriesOfProduct, findExact } from '../../src/exchange/build-table.ts';
import type { BuildEntry } from '../../src/exchange/build-table.ts';

const catalog = loadBundledCatalog();

/** The KB each update the contract names was published as (product.md, "Mitigations the bundled catalog must carry"). */
const KB_OF_LABEL: Record<string, string> = { Mar21SU: 'KB5000871', Nov22SU: 'KB5019758' };

function exchangeFixes(m: Mitigation): ProductFix[] {
  return m.fix.kind === 'exchange' ? m.fix.products : [];
}

function rowOf(build: string): BuildEntry {
  const parsed = parseBuild(build);
  assert.ok(parsed !== null, `${build} is a build`);
  const row = findExact(parsed);
  assert.ok(row !== null, `${build} is in the build list`);
  return row;
}

function line(build: string): number {
  return parseBuild(build)?.[2] ?? -1;
}

/** Checks that an update of the catalog is the build list's first build of that CU with that update. */
function checkFirstWithUpdate(product: Product, update: FixedUpdate, where: string): void {
  const row = rowOf(update.build);
  assert.equal(row.product, product, `${where}: ${update.build} is an Exchange ${product} build`);
  assert.equal(row.cu, update.cu, `${where}: ${update.build} belongs to ${row.cu}, not ${update.cu}`);
  assert.equal(row.update, update.update, `${where}: ${update.build} is ${row.name}, not ${update.update}`);
  const first = entriesOfCu(product, update.cu).find((e) => e.update === update.update);
  assert.equal(first?.build, update.build, `${where}: the first build of ${update.cu} with ${update.update} is ${first?.build}`);
  const kb = KB_OF_LABEL[update.update];
  if (kb !== undefined) assert.equal(row.kb, kb, `${where}: ${row.name} is ${kb}`);
}

describe('every fixed-in build of the bundled catalog against the build list', () => {
  for (const m of catalog.mitigations) {
    for (const fix of exchangeFixes(m)) {
      const where = `${m.id} ${fix.product}`;
      if (fix.allFixed) {
        it(`${where}: every build fixed, and the list has none of the mitigation's updates for it`, () => {
          const labels = new Set(exchangeFixes(m).flatMap((f) => f.updates.map((u) => u.update)));
          const carrying = entriesOfProduct(fix.product).filter((e) => e.update !== null && labels.has(e.update));
          assert.deepEqual(carrying.map((e) => e.name), []);
        });
        continue;
      }

      it(`${where}: each update is the first build of its CU with that update`, () => {
        assert.ok(fix.updates.length > 0 || fix.fixedFrom !== null, `${where} names some fixed build`);
        for (const update of fix.updates) checkFirstWithUpdate(fix.product, update, where);
      });

      if (fix.fixedFrom !== null) {
        it(`${where}: fixedFrom ${fix.fixedFrom} is the first build of ${fix.fixedFromCu}`, () => {
          const row = rowOf(fix.fixedFrom ?? '');
          assert.equal(row.product, fix.product);
          assert.equal(row.cu, fix.fixedFromCu);
          assert.equal(row.update, null, `${row.name} is the CU itself`);
          assert.equal(entriesOfCu(fix.product, row.cu)[0]?.build, fix.fixedFrom);
        });
      }

      if (fix.safeToRemoveFrom.length > 0) {
        it(`${where}: each safe-to-remove build is the first of its CU with that update, after the fix`, () => {
          for (const safe of fix.safeToRemoveFrom) {
            checkFirstWithUpdate(fix.product, safe, `${where} safeToRemove`);
            const fixed = fix.updates.find((u) => u.cu === safe.cu);
            assert.ok(fixed !== undefined, `${safe.cu} has a fixed build`);
            assert.ok(rowOf(safe.build).releaseDate > rowOf(fixed.build).releaseDate, `${safe.build} came after ${fixed.build}`);
          }
        });
      }

      it(`${where}: every CU before fixedFrom that received the update is listed`, () => {
        const labels = new Set(fix.updates.map((u) => u.update));
        const listed = new Set(fix.updates.map((u) => u.cu));
        const until = fix.fixedFrom === null ? Infinity : line(fix.fixedFrom);
        const missing = entriesOfProduct(fix.product)
          .filter((e) => e.update !== null && labels.has(e.update) && e.parsed[2] < until && !listed.has(e.cu))
          .map((e) => e.name);
        assert.deepEqual(missing, []);
      });
    }

    if (m.fix.kind === 'exchange') {
      it(`${m.id}: no product outside the catalog entry received its updates`, () => {
        const fixes = exchangeFixes(m);
        const labels = new Set(fixes.flatMap((f) => f.updates.map((u) => u.update)));
        const others = PRODUCTS.filter((p) => !fixes.some((f) => f.product === p));
        const carrying = others.flatMap((p) => entriesOfProduct(p)).filter((e) => e.update !== null && labels.has(e.update));
        assert.deepEqual(carrying.map((e) => e.name), []);
      });
    }
  }
});

describe('the builds the contract names', () => {
  /** id, product, CU, build, update label (null: fixedFrom). */
  const named: [string, Product, string, string, string | null][] = [
    ['proxylogon-cookie', '2013', 'SP1', '15.0.847.64', 'Mar21SU'],
    ['proxylogon-cookie', '2013', 'CU21', '15.0.1395.12', 'Mar21SU'],
    ['proxylogon-cookie', '2013', 'CU22', '15.0.1473.6', 'Mar21SU'],
    ['proxylogon-cookie', '2013', 'CU23', '15.0.1497.12', 'Mar21SU'],
    ['proxylogon-cookie', '2016', 'CU8', '15.1.1415.10', 'Mar21SU'],
    ['proxylogon-cookie', '2016', 'CU19', '15.1.2176.9', 'Mar21SU'],
    ['proxylogon-cookie', '2016', 'CU20', '15.1.2242.4', null],
    ['proxylogon-cookie', '2019', 'RTM', '15.2.221.18', 'Mar21SU'],
    ['proxylogon-cookie', '2019', 'CU8', '15.2.792.10', 'Mar21SU'],
    ['proxylogon-cookie', '2019', 'CU9', '15.2.858.5', null],
    ['proxynotshell-autodiscover', '2013', 'CU23', '15.0.1497.44', 'Nov22SU'],
    ['proxynotshell-autodiscover', '2016', 'CU22', '15.1.2375.37', 'Nov22SU'],
    ['proxynotshell-autodiscover', '2016', 'CU23', '15.1.2507.16', 'Nov22SU'],
    ['proxynotshell-autodiscover', '2019', 'CU11', '15.2.986.36', 'Nov22SU'],
    ['proxynotshell-autodiscover', '2019', 'CU12', '15.2.1118.20', 'Nov22SU'],
    ['proxynotshell-autodiscover', '2019', 'CU13', '15.2.1258.12', null],
    ['owa-csp-xss', '2016', 'CU23', '15.1.2507.69', 'Jun26SU'],
    ['owa-csp-xss', '2019', 'CU14', '15.2.1544.41', 'Jun26SU'],
    ['owa-csp-xss', '2019', 'CU15', '15.2.1748.46', 'Jun26SU'],
    ['owa-csp-xss', 'SE', 'RTM', '15.2.2562.43', 'Jun26SU'],
  ];
  for (const [id, product, cu, build, label] of named) {
    it(`${id} ${product} ${cu}: ${build}${label === null ? ' (fixed from)' : ` ${label}`}`, () => {
      const fix = exchangeFixes(catalog.mitigations.find((m) => m.id === id) as Mitigation).find((f) => f.product === product);
      assert.ok(fix !== undefined);
      if (label === null) {
        assert.equal(fix.fixedFrom, build);
        assert.equal(fix.fixedFromCu, cu);
      } else {
        assert.deepEqual(fix.updates.find((u) => u.cu === cu), { cu, build, update: label });
      }
    });
  }

  it('owa-csp-xss can be removed from the July 2026 builds (.71/.43/.48/.45)', () => {
    const owa = catalog.mitigations.find((m) => m.id === 'owa-csp-xss') as Mitigation;
    const safe = exchangeFixes(owa).flatMap((f) => f.safeToRemoveFrom.map((s) => `${f.product} ${s.cu} ${s.build} ${s.update}`));
    assert.deepEqual(safe, ['2016 CU23 15.1.2507.71 Jul26SU', '2019 CU14 15.2.1544.43 Jul26SU', '2019 CU15 15.2.1748.48 Jul26SU', 'SE RTM 15.2.2562.45 Jul26SU']);
  });

  it('the mitigations fixed by the same update carry the same builds', () => {
    const fixesOf = (id: string): string => JSON.stringify(exchangeFixes(catalog.mitigations.find((m) => m.id === id) as Mitigation));
    for (const id of ['proxylogon-um-services', 'proxylogon-ecp-apppool', 'proxylogon-oab-apppool']) assert.equal(fixesOf(id), fixesOf('proxylogon-cookie'));
    assert.equal(fixesOf('owassrf'), fixesOf('proxynotshell-autodiscover'));
  });
});
