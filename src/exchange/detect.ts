/** Detection: which Exchange product, build, CU/SU and roles a server has, from the facts the engine gathered. */

import { inputError } from '../errors.ts';
import type { RegistryKey, ServerFacts } from '../facts.ts';
import type { Product, Role } from '../catalog/types.ts';
import { ROLES } from '../catalog/types.ts';
import { buildFromParts, formatBuild, parseBuild, parseBuildPart, sameCuLine } from './build.ts';
import type { Build } from './build.ts';
import { cuOf, findExact, isNewerThanTable, latestForCu, nearestEarlier, productOfBuild } from './build-table.ts';
import { supportOf, type Support } from './support.ts';

/** Product names as `detect` reports them, per product key. */
export const PRODUCT_NAMES = {
  '2013': 'Exchange Server 2013',
  '2016': 'Exchange Server 2016',
  '2019': 'Exchange Server 2019',
  SE: 'Exchange Server Subscription Edition',
} as const satisfies Record<Product, string>;

/** What `detect` reports (product.md, "JSON output"); audit embeds it as `server`. */
export interface DetectResult {
  product: (typeof PRODUCT_NAMES)[Product];
  productKey: Product;
  /** Four numbers without padding ("15.2.1118.20"). */
  build: string;
  /** The release's name as the build list spells it; when the build is not listed, the nearest earlier release of the same product. */
  name: string;
  /** False when the build is not in the build list. */
  exactBuild: boolean;
  /** "CU12", "RTM", "SP1" of the build's own CU line (third number); null when the list knows no such line (newer CU, or an unlisted one). */
  cu: string | null;
  /** The named release's SU/HU label ("Nov22SU"); null for a CU itself, or when the named release is not on the build's CU line. */
  update: string | null;
  /** The named release's date (YYYY-MM-DD); null when no release is named. */
  releaseDate: string | null;
  /** In the fixed order Mailbox, ClientAccess, EdgeTransport, ManagementTools. */
  roles: Role[];
  /** Setup's MsiInstallPath; null when the registry does not give it. */
  installPath: string | null;
  /** exsetup: ExSetup.exe's file version (SU level known); registry: Setup's Msi values (the CU's own build). */
  buildSource: 'exsetup' | 'registry';
  /** False when the build came from the registry, which carries the CU but not the SU. */
  suLevelKnown: boolean;
  /** The newest update of the server's CU in the list; null when the CU is unknown. */
  latestForCu: { name: string; build: string } | null;
  /** The build's CU line is newer than anything the list knows for its product. */
  newerThanTable: boolean;
  /** The Exchange Emergency Mitigation Service: present is null when the service list could not be read. */
  eems: { present: boolean | null; status: string | null; startType: string | null };
  /** Whether the server's CU still gets security updates (from the build list): anything but `current` makes audit exit 3. */
  support: Support;
}

/** Where Exchange keeps its setup values, for messages. */
const SETUP_KEY_PATH = 'HKLM:\\SOFTWARE\\Microsoft\\ExchangeServer\\v15\\Setup';

/** The EEMS service's name. */
export const EEMS_SERVICE = 'MSExchangeMitigation';

/** Registry key names (lower case) and the roles they show. */
const ROLE_KEYS: ReadonlyMap<string, Role> = new Map([
  ['mailboxrole', 'Mailbox'],
  ['clientaccessrole', 'ClientAccess'],
  ['caferole', 'ClientAccess'],
  ['edgetransportrole', 'EdgeTransport'],
  ['admintools', 'ManagementTools'],
]);

/** Turns gathered facts into the detection result; throws a user-facing error when there is no Exchange setup key or no readable build. */
export function detectServer(facts: ServerFacts): DetectResult {
  const setup = findKey(facts.registry, 'Setup');
  if (facts.registry === null || setup === null) {
    throw inputError(
      `no Exchange Server setup key in the registry (${SETUP_KEY_PATH})`,
      'Run exmit on an Exchange 2013, 2016, 2019 or SE server, or give an image whose registry.xml holds the Setup key.',
    );
  }
  const { build, source } = readBuild(facts, setup);
  const productKey = productOfBuild(build);
  if (productKey === null) {
    throw inputError(
      `Exchange build ${formatBuild(build)} is not Exchange 2013, 2016, 2019 or SE`,
      'exmit supports Exchange Server 2013, 2016, 2019 and Subscription Edition.',
    );
  }

  const exact = findExact(build);
  const named = exact ?? nearestEarlier(build);
  const cu = cuOf(build);
  const latest = cu === null ? null : latestForCu(productKey, cu);
  const roles = readRoles(facts.registry, productKey);

  return {
    product: PRODUCT_NAMES[productKey],
    productKey,
    build: formatBuild(build),
    name: named?.name ?? `Exchange ${productKey} ${formatBuild(build)}`,
    exactBuild: exact !== null,
    cu,
    update: named !== null && sameCuLine(named.parsed, build) ? named.update : null,
    releaseDate: named?.releaseDate ?? null,
    roles,
    installPath: readInstallPath(setup),
    buildSource: source,
    suLevelKnown: source === 'exsetup',
    latestForCu: latest === null ? null : { name: latest.name, build: latest.build },
    newerThanTable: isNewerThanTable(build),
    eems: readEems(facts),
    support: supportOf(productKey, cu, isNewerThanTable(build)),
  };
}

/** Finds a registry key by name, case-insensitively. */
function findKey(registry: RegistryKey[] | null, name: string): RegistryKey | null {
  return registry?.find((key) => key.name.toLowerCase() === name.toLowerCase()) ?? null;
}

/** Reads a value of a key by name, case-insensitively (the registry ignores case). */
function readValue(key: RegistryKey, name: string): string | number | boolean | null | undefined {
  const found = Object.keys(key.values).find((k) => k.toLowerCase() === name.toLowerCase());
  return found === undefined ? undefined : key.values[found];
}

/** The build from ExSetup.exe's version when gathered, else from Setup's Msi values. */
function readBuild(facts: ServerFacts, setup: RegistryKey): { build: Build; source: 'exsetup' | 'registry' } {
  if (facts.exsetup !== null) {
    const build = parseBuild(facts.exsetup.version.trim());
    if (build === null) {
      throw inputError(
        `ExSetup.exe's file version "${facts.exsetup.version}" is not an Exchange build number`,
        'In an image, exsetup.xml must be the VersionInfo export of ExSetup.exe.',
      );
    }
    return { build, source: 'exsetup' };
  }
  const names = ['MsiProductMajor', 'MsiProductMinor', 'MsiBuildMajor', 'MsiBuildMinor'] as const;
  const values = names.map((name) => {
    const value = readValue(setup, name);
    return typeof value === 'string' ? value.trim() : value;
  });
  const build = buildFromParts(values[0], values[1], values[2], values[3]);
  if (build === null) {
    const bad = names.filter((_, i) => parseBuildPart(values[i]) === null);
    throw inputError(
      `the Exchange setup key (${SETUP_KEY_PATH}) has no usable ${bad.join(', ')}`,
      'These values give the installed CU; without them (and without ExSetup.exe) the build cannot be known.',
    );
  }
  return { build, source: 'registry' };
}

/** Setup's MsiInstallPath, or null when absent or empty. */
function readInstallPath(setup: RegistryKey): string | null {
  const value = readValue(setup, 'MsiInstallPath');
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

/** Roles from the role keys, in the fixed order; a Mailbox server on 2016 and later also runs the Client Access front end. */
function readRoles(registry: RegistryKey[], product: Product): Role[] {
  const found = new Set<Role>();
  for (const key of registry) {
    const role = ROLE_KEYS.get(key.name.toLowerCase());
    if (role !== undefined) found.add(role);
  }
  if (found.has('Mailbox') && product !== '2013') found.add('ClientAccess');
  return ROLES.filter((role) => found.has(role));
}

/** The EEMS service's state; present null and state null when the service list could not be read. */
function readEems(facts: ServerFacts): DetectResult['eems'] {
  if (facts.services === null) return { present: null, status: null, startType: null };
  const service = facts.services.find((s) => s.name.toLowerCase() === EEMS_SERVICE.toLowerCase());
  if (service === undefined) return { present: false, status: null, startType: null };
  return { present: true, status: service.status, startType: service.startType };
}
