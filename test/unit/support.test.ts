// The support state, from Microsoft's build list: table tests over real builds, and over an edited
// list to show that the state follows the list (regenerating it keeps the state true).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BUILD_TABLE, type BuildEntry } from '../../src/exchange/build-table.ts';
import { currentCus, isSecurityUpdate, supportOf } from '../../src/exchange/support.ts';
import { detectServer } from '../../src/exchange/detect.ts';
import { parseBuild } from '../../src/exchange/build.ts';
import type { ServerFacts } from '../../src/facts.ts';

function detect(build: string) {
  const facts: ServerFacts = {
    target: { kind: 'image', path: '/img', computerName: null },
    registry: [{ name: 'Setup', values: { MsiProductMajor: 15, MsiProductMinor: 0, MsiBuildMajor: 0, MsiBuildMinor: 0 } }, { name: 'MailboxRole', values: {} }],
    exsetup: { fileName: 'ExSetup.exe', version: build },
    services: [],
    cachtokn: null,
    os: null,
    environment: null,
    appPools: null,
    applicationHost: null,
    missing: [],
  };
  return detectServer(facts);
}

describe('support state over real builds', () => {
  const cases: { build: string; state: string; last: string | null; reason: RegExp }[] = [
    { build: '15.0.1497.48', state: 'product-ended', last: 'Exchange 2013 CU23 Mar23SU', reason: /Exchange 2013 has had no security update since 2023-03-14/ },
    { build: '15.0.1497.2', state: 'product-ended', last: 'Exchange 2013 CU23 Mar23SU', reason: /no more updates/ },
    { build: '15.1.2375.37', state: 'cu-behind', last: 'Exchange 2016 CU22 Nov22SU', reason: /went to CU23, not to CU22/ },
    { build: '15.1.2507.69', state: 'current', last: 'Exchange 2016 CU23 Aug26SU', reason: /CU23 received Exchange 2016's newest security update \(Aug26SU, 2026-08-11\)/ },
    { build: '15.2.1118.15', state: 'cu-behind', last: 'Exchange 2019 CU12 Nov23SU', reason: /went to CU14 and CU15, not to CU12: CU12 gets no more updates, and every fix after Exchange 2019 CU12 Nov23SU \(2023-11-14\) is missing/ },
    { build: '15.2.1544.41', state: 'current', last: 'Exchange 2019 CU14 Aug26SU', reason: /CU14 received/ },
    { build: '15.2.1748.49', state: 'current', last: 'Exchange 2019 CU15 Aug26SU', reason: /CU15 received/ },
    { build: '15.2.792.3', state: 'cu-behind', last: 'Exchange 2019 CU8 May21SU', reason: /not to CU8/ },
    { build: '15.2.2562.43', state: 'current', last: 'Exchange SE RTM Aug26SU', reason: /RTM received/ },
    { build: '15.2.3000.5', state: 'current', last: null, reason: /newer than the build list knows/ },
  ];
  for (const c of cases) {
    it(`${c.build}: ${c.state}`, () => {
      const server = detect(c.build);
      assert.equal(server.support.state, c.state, server.support.reason);
      assert.equal(server.support.lastUpdate?.name ?? null, c.last);
      assert.match(server.support.reason, c.reason);
    });
  }
  it('lastUpdate carries the build and the date from the list', () => {
    assert.deepEqual(detect('15.2.1118.15').support.lastUpdate, { name: 'Exchange 2019 CU12 Nov23SU', build: '15.2.1118.40', releaseDate: '2023-11-14' });
  });
  it('hotfix updates (HU) are not security updates; SUv2 is', () => {
    const byName = (n: string) => BUILD_TABLE.find((e) => e.name === n) as BuildEntry;
    assert.equal(isSecurityUpdate(byName('Exchange SE RTM May26HU')), false);
    assert.equal(isSecurityUpdate(byName('Exchange 2016 CU23 Nov24SUv2')), true);
    assert.equal(isSecurityUpdate(byName('Exchange 2019 CU15')), false);
  });
  it('the CUs that got the newest update are where a CU move goes', () => {
    assert.deepEqual(currentCus('2019'), ['CU14', 'CU15']);
    assert.deepEqual(currentCus('2016'), ['CU23']);
  });
});

describe('support state follows the list', () => {
  function entry(product: BuildEntry['product'], name: string, build: string, cu: string, update: string | null, releaseDate: string): BuildEntry {
    return { product, name, build, parsed: parseBuild(build) as NonNullable<ReturnType<typeof parseBuild>>, cu, update, releaseDate, kb: null };
  }
  it('a newer update that goes only to CU15 puts CU14 behind', () => {
    const table = [...BUILD_TABLE, entry('2019', 'Exchange 2019 CU15 Sep26SU', '15.2.1748.52', 'CU15', 'Sep26SU', '2026-09-08')];
    assert.equal(supportOf('2019', 'CU14', false, table).state, 'cu-behind');
    assert.equal(supportOf('2019', 'CU15', false, table).state, 'current');
    assert.deepEqual(currentCus('2019', table), ['CU15']);
  });
  it('a product whose updates stop for more than a year while others go on has ended', () => {
    const later = [...BUILD_TABLE, entry('SE', 'Exchange SE RTM Oct27SU', '15.2.2562.90', 'RTM', 'Oct27SU', '2027-10-12')];
    assert.equal(supportOf('2019', 'CU15', false, later).state, 'product-ended');
    assert.equal(supportOf('SE', 'RTM', false, later).state, 'current');
  });
});
