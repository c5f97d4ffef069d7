import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { detectServer } from '../../src/exchange/detect.ts';
import type { DetectResult } from '../../src/exchange/detect.ts';
import type { RegistryKey, ServerFacts, ServiceFact } from '../../src/facts.ts';
import { ExmitError } from '../../src/errors.ts';

const INSTALL_PATH = 'C:\\Program Files\\Microsoft\\Exchange Server\\V15\\';

/** A Setup key as Get-ItemProperty exports it; the Msi values may be numbers or strings. */
function setupKey(parts: readonly (number | string)[], extra: Record<string, string | number | null> = {}): RegistryKey {
  const [major, minor, build, revision] = parts;
  return {
    name: 'Setup',
    values: {
      MsiInstallPath: INSTALL_PATH,
      MsiProductMajor: major ?? null,
      MsiProductMinor: minor ?? null,
      MsiBuildMajor: build ?? null,
      MsiBuildMinor: revision ?? null,
      ...extra,
    },
  };
}

/** Role keys by name, with no values (detection only looks at the names). */
function roleKeys(...names: string[]): RegistryKey[] {
  return names.map((name) => ({ name, values: {} }));
}

/** The Windows services of a typical server, with or without EEMS. */
function services(eems: Partial<ServiceFact> | null): ServiceFact[] {
  const list: ServiceFact[] = [
    { name: 'MSExchangeIS', displayName: 'Microsoft Exchange Information Store', status: 'Running', startType: 'Automatic' },
    { name: 'W3SVC', displayName: 'World Wide Web Publishing Service', status: 'Running', startType: 'Automatic' },
  ];
  if (eems !== null) {
    list.push({ name: 'MSExchangeMitigation', displayName: 'Microsoft Exchange Emergency Mitigation Service', status: 'Running', startType: 'Automatic', ...eems });
  }
  return list;
}

/** Server facts around the parts a test varies. */
function facts(overrides: Partial<ServerFacts>): ServerFacts {
  return {
    target: { kind: 'image', path: '/images/ex1', computerName: 'EX1' },
    registry: [setupKey([15, 2, 1118, 7]), ...roleKeys('MailboxRole', 'AdminTools')],
    exsetup: null,
    services: services({}),
    cachtokn: null,
    os: null,
    environment: null,
    appPools: null,
    applicationHost: null,
    missing: [],
    ...overrides,
  };
}

/** ExSetup.exe's version fact. */
function exsetup(version: string): ServerFacts['exsetup'] {
  return { fileName: 'ExSetup.exe', version };
}

/** The fields a user checks, picked from a result. */
type Checked = Pick<DetectResult, 'product' | 'productKey' | 'build' | 'name' | 'exactBuild' | 'cu' | 'update' | 'releaseDate' | 'latestForCu' | 'newerThanTable' | 'buildSource' | 'suLevelKnown'>;

function checked(result: DetectResult): Checked {
  const { product, productKey, build, name, exactBuild, cu, update, releaseDate, latestForCu, newerThanTable, buildSource, suLevelKnown } = result;
  return { product, productKey, build, name, exactBuild, cu, update, releaseDate, latestForCu, newerThanTable, buildSource, suLevelKnown };
}

describe('detectServer: build, name, CU and update from ExSetup.exe', () => {
  const cases: [string, string, [number, number, number, number], Checked][] = [
    ['2013 SP1', '15.0.847.32', [15, 0, 847, 32], {
      product: 'Exchange Server 2013', productKey: '2013', build: '15.0.847.32', name: 'Exchange 2013 SP1', exactBuild: true,
      cu: 'SP1', update: null, releaseDate: '2014-02-25', latestForCu: { name: 'Exchange 2013 SP1 Mar21SU', build: '15.0.847.64' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2013 CU21', '15.0.1395.4', [15, 0, 1395, 4], {
      product: 'Exchange Server 2013', productKey: '2013', build: '15.0.1395.4', name: 'Exchange 2013 CU21', exactBuild: true,
      cu: 'CU21', update: null, releaseDate: '2018-06-19', latestForCu: { name: 'Exchange 2013 CU21 Mar21SU', build: '15.0.1395.12' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2013 CU23 Mar23SU', '15.0.1497.48', [15, 0, 1497, 2], {
      product: 'Exchange Server 2013', productKey: '2013', build: '15.0.1497.48', name: 'Exchange 2013 CU23 Mar23SU', exactBuild: true,
      cu: 'CU23', update: 'Mar23SU', releaseDate: '2023-03-14', latestForCu: { name: 'Exchange 2013 CU23 Mar23SU', build: '15.0.1497.48' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2016 CU8', '15.1.1415.2', [15, 1, 1415, 2], {
      product: 'Exchange Server 2016', productKey: '2016', build: '15.1.1415.2', name: 'Exchange 2016 CU8', exactBuild: true,
      cu: 'CU8', update: null, releaseDate: '2017-12-19', latestForCu: { name: 'Exchange 2016 CU8 Mar21SU', build: '15.1.1415.10' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2016 CU22 Nov22SU', '15.1.2375.37', [15, 1, 2375, 7], {
      product: 'Exchange Server 2016', productKey: '2016', build: '15.1.2375.37', name: 'Exchange 2016 CU22 Nov22SU', exactBuild: true,
      cu: 'CU22', update: 'Nov22SU', releaseDate: '2022-11-08', latestForCu: { name: 'Exchange 2016 CU22 Nov22SU', build: '15.1.2375.37' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2016 CU23, latest update', '15.1.2507.72', [15, 1, 2507, 6], {
      product: 'Exchange Server 2016', productKey: '2016', build: '15.1.2507.72', name: 'Exchange 2016 CU23 Aug26SU', exactBuild: true,
      cu: 'CU23', update: 'Aug26SU', releaseDate: '2026-08-11', latestForCu: { name: 'Exchange 2016 CU23 Aug26SU', build: '15.1.2507.72' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2019 RTM', '15.2.221.12', [15, 2, 221, 12], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.221.12', name: 'Exchange 2019 RTM', exactBuild: true,
      cu: 'RTM', update: null, releaseDate: '2018-10-22', latestForCu: { name: 'Exchange 2019 RTM Mar21SU', build: '15.2.221.18' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2019 CU12 Oct22SU', '15.2.1118.15', [15, 2, 1118, 7], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1118.15', name: 'Exchange 2019 CU12 Oct22SU', exactBuild: true,
      cu: 'CU12', update: 'Oct22SU', releaseDate: '2022-10-11', latestForCu: { name: 'Exchange 2019 CU12 Nov23SU', build: '15.2.1118.40' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2019 CU12 Nov22SU', '15.2.1118.20', [15, 2, 1118, 7], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1118.20', name: 'Exchange 2019 CU12 Nov22SU', exactBuild: true,
      cu: 'CU12', update: 'Nov22SU', releaseDate: '2022-11-08', latestForCu: { name: 'Exchange 2019 CU12 Nov23SU', build: '15.2.1118.40' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2019 CU14 Apr24HU', '15.2.1544.11', [15, 2, 1544, 4], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1544.11', name: 'Exchange 2019 CU14 Apr24HU', exactBuild: true,
      cu: 'CU14', update: 'Apr24HU', releaseDate: '2024-04-23', latestForCu: { name: 'Exchange 2019 CU14 Aug26SU', build: '15.2.1544.44' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2019 CU14 Nov24SUv2', '15.2.1544.14', [15, 2, 1544, 4], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1544.14', name: 'Exchange 2019 CU14 Nov24SUv2', exactBuild: true,
      cu: 'CU14', update: 'Nov24SUv2', releaseDate: '2024-11-27', latestForCu: { name: 'Exchange 2019 CU14 Aug26SU', build: '15.2.1544.44' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['2019 CU14 Sep25HU', '15.2.1544.34', [15, 2, 1544, 4], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1544.34', name: 'Exchange 2019 CU14 Sep25HU', exactBuild: true,
      cu: 'CU14', update: 'Sep25HU', releaseDate: '2025-09-08', latestForCu: { name: 'Exchange 2019 CU14 Aug26SU', build: '15.2.1544.44' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['SE RTM Jun26SU', '15.2.2562.43', [15, 2, 2562, 17], {
      product: 'Exchange Server Subscription Edition', productKey: 'SE', build: '15.2.2562.43', name: 'Exchange SE RTM Jun26SU', exactBuild: true,
      cu: 'RTM', update: 'Jun26SU', releaseDate: '2026-06-09', latestForCu: { name: 'Exchange SE RTM Aug26SU', build: '15.2.2562.46' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['zero-padded ExSetup version', '15.02.1118.020', [15, 2, 1118, 7], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1118.20', name: 'Exchange 2019 CU12 Nov22SU', exactBuild: true,
      cu: 'CU12', update: 'Nov22SU', releaseDate: '2022-11-08', latestForCu: { name: 'Exchange 2019 CU12 Nov23SU', build: '15.2.1118.40' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['a build not in the list: named after the nearest earlier release of its CU', '15.2.1118.22', [15, 2, 1118, 7], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1118.22', name: 'Exchange 2019 CU12 Jan23SU', exactBuild: false,
      cu: 'CU12', update: 'Jan23SU', releaseDate: '2023-01-10', latestForCu: { name: 'Exchange 2019 CU12 Nov23SU', build: '15.2.1118.40' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['an unlisted CU line between known ones', '15.2.1200.3', [15, 2, 1200, 3], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1200.3', name: 'Exchange 2019 CU12 Nov23SU', exactBuild: false,
      cu: null, update: null, releaseDate: '2023-11-14', latestForCu: null,
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['a 2019 CU newer than the list', '15.2.1800.5', [15, 2, 1800, 5], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1800.5', name: 'Exchange 2019 CU15 Aug26SU', exactBuild: false,
      cu: null, update: null, releaseDate: '2026-08-11', latestForCu: null,
      newerThanTable: true, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['an SE CU newer than the list', '15.2.2650.10', [15, 2, 2650, 10], {
      product: 'Exchange Server Subscription Edition', productKey: 'SE', build: '15.2.2650.10', name: 'Exchange SE RTM Aug26SU', exactBuild: false,
      cu: null, update: null, releaseDate: '2026-08-11', latestForCu: null,
      newerThanTable: true, buildSource: 'exsetup', suLevelKnown: true,
    }],
    ['an SE update newer than the list', '15.2.2562.50', [15, 2, 2562, 17], {
      product: 'Exchange Server Subscription Edition', productKey: 'SE', build: '15.2.2562.50', name: 'Exchange SE RTM Aug26SU', exactBuild: false,
      cu: 'RTM', update: 'Aug26SU', releaseDate: '2026-08-11', latestForCu: { name: 'Exchange SE RTM Aug26SU', build: '15.2.2562.46' },
      newerThanTable: false, buildSource: 'exsetup', suLevelKnown: true,
    }],
  ];
  for (const [what, version, registryParts, expected] of cases) {
    it(what, () => {
      const result = detectServer(facts({ registry: [setupKey(registryParts), ...roleKeys('MailboxRole')], exsetup: exsetup(version) }));
      assert.deepEqual(checked(result), expected);
      assert.equal(result.installPath, INSTALL_PATH);
    });
  }
});

describe('detectServer: build from the registry only (SU level unknown)', () => {
  const cases: [string, readonly (number | string)[], Checked][] = [
    ['2019 CU12 as numbers', [15, 2, 1118, 7], {
      product: 'Exchange Server 2019', productKey: '2019', build: '15.2.1118.7', name: 'Exchange 2019 CU12', exactBuild: true,
      cu: 'CU12', update: null, releaseDate: '2022-04-20', latestForCu: { name: 'Exchange 2019 CU12 Nov23SU', build: '15.2.1118.40' },
      newerThanTable: false, buildSource: 'registry', suLevelKnown: false,
    }],
    ['2016 CU23 as strings', ['15', '1', '2507', '6'], {
      product: 'Exchange Server 2016', productKey: '2016', build: '15.1.2507.6', name: 'Exchange 2016 CU23', exactBuild: true,
      cu: 'CU23', update: null, releaseDate: '2022-04-20', latestForCu: { name: 'Exchange 2016 CU23 Aug26SU', build: '15.1.2507.72' },
      newerThanTable: false, buildSource: 'registry', suLevelKnown: false,
    }],
    ['2013 CU23, zero-padded strings', ['15', '00', '1497', '002'], {
      product: 'Exchange Server 2013', productKey: '2013', build: '15.0.1497.2', name: 'Exchange 2013 CU23', exactBuild: true,
      cu: 'CU23', update: null, releaseDate: '2019-06-18', latestForCu: { name: 'Exchange 2013 CU23 Mar23SU', build: '15.0.1497.48' },
      newerThanTable: false, buildSource: 'registry', suLevelKnown: false,
    }],
    ['SE RTM', [15, 2, 2562, 17], {
      product: 'Exchange Server Subscription Edition', productKey: 'SE', build: '15.2.2562.17', name: 'Exchange SE RTM', exactBuild: true,
      cu: 'RTM', update: null, releaseDate: '2025-07-01', latestForCu: { name: 'Exchange SE RTM Aug26SU', build: '15.2.2562.46' },
      newerThanTable: false, buildSource: 'registry', suLevelKnown: false,
    }],
  ];
  for (const [what, parts, expected] of cases) {
    it(what, () => {
      const result = detectServer(facts({ registry: [setupKey(parts), ...roleKeys('MailboxRole')], exsetup: null }));
      assert.deepEqual(checked(result), expected);
    });
  }

  it('reads value names case-insensitively', () => {
    const key: RegistryKey = {
      name: 'setup',
      values: { msiinstallpath: 'D:\\Exchange\\', MSIPRODUCTMAJOR: 15, msiProductMinor: 1, msibuildmajor: 2375, MsiBuildMinor: 7 },
    };
    const result = detectServer(facts({ registry: [key], exsetup: null }));
    assert.equal(result.name, 'Exchange 2016 CU22');
    assert.equal(result.installPath, 'D:\\Exchange\\');
  });

  it('gives a null install path when MsiInstallPath is absent', () => {
    const key: RegistryKey = { name: 'Setup', values: { MsiProductMajor: 15, MsiProductMinor: 2, MsiBuildMajor: 1118, MsiBuildMinor: 7 } };
    assert.equal(detectServer(facts({ registry: [key] })).installPath, null);
  });
});

describe('detectServer: roles', () => {
  const cases: [string, [number, number, number, number], string[], string[]][] = [
    ['2019 Mailbox also runs Client Access', [15, 2, 1118, 7], ['MailboxRole', 'AdminTools'], ['Mailbox', 'ClientAccess', 'ManagementTools']],
    ['2016 Mailbox also runs Client Access', [15, 1, 2507, 6], ['AdminTools', 'MailboxRole'], ['Mailbox', 'ClientAccess', 'ManagementTools']],
    ['SE Mailbox also runs Client Access', [15, 2, 2562, 17], ['MailboxRole'], ['Mailbox', 'ClientAccess']],
    ['2013 Mailbox alone is Mailbox only', [15, 0, 1497, 2], ['MailboxRole', 'AdminTools'], ['Mailbox', 'ManagementTools']],
    ['2013 multi-role, in the fixed order', [15, 0, 1497, 2], ['AdminTools', 'ClientAccessRole', 'MailboxRole'], ['Mailbox', 'ClientAccess', 'ManagementTools']],
    ['2013 CAS through CafeRole', [15, 0, 1497, 2], ['CafeRole', 'AdminTools'], ['ClientAccess', 'ManagementTools']],
    ['2019 Edge Transport', [15, 2, 1118, 7], ['EdgeTransportRole', 'AdminTools'], ['EdgeTransport', 'ManagementTools']],
    ['2013 Edge Transport', [15, 0, 1497, 2], ['EdgeTransportRole'], ['EdgeTransport']],
    ['management tools only', [15, 2, 1118, 7], ['AdminTools'], ['ManagementTools']],
    ['key names in any case', [15, 1, 2507, 6], ['MAILBOXROLE', 'admintools'], ['Mailbox', 'ClientAccess', 'ManagementTools']],
    ['no role keys', [15, 2, 1118, 7], ['UnifiedMessagingRole', 'Language Packs'], []],
    ['no duplicate ClientAccess', [15, 2, 1118, 7], ['MailboxRole', 'ClientAccessRole', 'CafeRole'], ['Mailbox', 'ClientAccess']],
  ];
  for (const [what, parts, keys, roles] of cases) {
    it(what, () => {
      const result = detectServer(facts({ registry: [setupKey(parts), ...roleKeys(...keys)] }));
      assert.deepEqual(result.roles, roles);
    });
  }
});

describe('detectServer: EEMS', () => {
  const cases: [string, ServiceFact[] | null, DetectResult['eems']][] = [
    ['present and running', services({ status: 'Running', startType: 'Automatic' }), { present: true, status: 'Running', startType: 'Automatic' }],
    ['present, stopped and disabled', services({ status: 'Stopped', startType: 'Disabled' }), { present: true, status: 'Stopped', startType: 'Disabled' }],
    ['name in another case', services({ name: 'msexchangemitigation' }), { present: true, status: 'Running', startType: 'Automatic' }],
    ['absent (2013, Edge, old CUs)', services(null), { present: false, status: null, startType: null }],
    ['service list not read', null, { present: null, status: null, startType: null }],
  ];
  for (const [what, list, eems] of cases) {
    it(what, () => assert.deepEqual(detectServer(facts({ services: list })).eems, eems));
  }
});

describe('detectServer: errors', () => {
  const setupMessage = 'no Exchange Server setup key in the registry (HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup)';
  const cases: [string, Partial<ServerFacts>, string | RegExp][] = [
    ['no registry', { registry: null }, setupMessage],
    ['no Setup key', { registry: roleKeys('MailboxRole', 'AdminTools') }, setupMessage],
    ['Setup without the Msi build values', { registry: [{ name: 'Setup', values: { MsiInstallPath: INSTALL_PATH, MsiProductMajor: 15 } }] }, /MsiProductMinor, MsiBuildMajor, MsiBuildMinor/],
    ['Setup with a non-number', { registry: [setupKey([15, 2, 'x', 7])] }, /no usable MsiBuildMajor/],
    ['an unreadable ExSetup version', { exsetup: exsetup('15.2.1118') }, /ExSetup\.exe's file version "15\.2\.1118"/],
    ['an Exchange 2010 build', { exsetup: exsetup('14.3.513.0') }, /14\.3\.513\.0 is not Exchange 2013, 2016, 2019 or SE/],
  ];
  for (const [what, overrides, message] of cases) {
    it(what, () => {
      assert.throws(
        () => detectServer(facts(overrides)),
        (error: unknown) => {
          assert.ok(error instanceof ExmitError);
          assert.equal(error.code, 1);
          if (typeof message === 'string') assert.equal(error.message, message);
          else assert.match(error.message, message);
          return true;
        },
      );
    });
  }
});
