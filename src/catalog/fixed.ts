/** Whether a build (or a Windows file version) already has a mitigation's fix, by the catalog's per-CU model. */

import { inputError } from '../errors.ts';
import { compareBuilds, formatBuild, parseBuild } from '../exchange/build.ts';
import type { Build } from '../exchange/build.ts';
import { cuOf, isNewerThanTable } from '../exchange/build-table.ts';
import type { FixedUpdate, Mitigation, Product, ProductFix, WindowsFixVersion } from './types.ts';

/** The verdict on an Exchange build: unknown-newer is a CU newer than the build list knows, above every fixed build, and counts as fixed. */
export interface FixState {
  state: 'fixed' | 'vulnerable' | 'unknown-newer';
  /** One sentence for people, naming the builds that decide. */
  reason: string;
  /** The first fixed build of the server's CU (the update's build, or fixedFrom); null when its CU has none. */
  fixedBuild: string | null;
  /** The release that carries that fix ("Exchange 2019 CU12 Nov22SU"); null when the fix came with the CU itself or there is none. */
  update: string | null;
}

/** The verdict on Windows for a mitigation fixed by a Windows update (tokencache-module). */
export interface WindowsFixState {
  state: 'fixed' | 'vulnerable' | 'not-affected' | 'unknown';
  /** One sentence for people; for unknown it names what is missing. */
  reason: string;
  /** The Windows name the version was matched to ("Windows Server 2019"); null when none matched. */
  os: string | null;
  /** First fixed file version on that Windows; null when not affected or unknown. */
  fixedVersion: string | null;
}

const PRODUCT_LINE: Record<Product, readonly [number, number]> = { '2013': [15, 0], '2016': [15, 1], '2019': [15, 2], SE: [15, 2] };

/** Human name of a product key ("Exchange 2019", "Exchange SE"). */
export function productName(product: Product): string {
  return `Exchange ${product}`;
}

/** Decides whether an Exchange build has the mitigation's fix: the CU's update build, the first CU that shipped with it, or neither. */
export function fixState(mitigation: Mitigation, productKey: Product, build: string | Build): FixState {
  if (mitigation.fix.kind !== 'exchange') {
    throw new Error(`${mitigation.id} is fixed by Windows, not by an Exchange build: use windowsFixState`);
  }
  const parsed = typeof build === 'string' ? parseBuild(build) : build;
  if (parsed === null) throw inputError(`"${String(build)}" is not an Exchange build number`, 'an Exchange build is four numbers such as 15.2.1118.20');
  const text = formatBuild(parsed);
  const name = productName(productKey);
  const fix = mitigation.fix.products.find((p) => p.product === productKey);
  if (fix === undefined) {
    return vulnerable(`the catalog gives no fix for ${name} in ${mitigation.id}: judged as vulnerable`);
  }
  if (fix.allFixed) {
    return { state: 'fixed', reason: `every ${name} build has the fix`, fixedBuild: null, update: null };
  }
  const [major, minor] = PRODUCT_LINE[productKey];
  if (parsed[0] !== major || parsed[1] !== minor) {
    return vulnerable(`build ${text} is not an ${name} build: judged as vulnerable`);
  }

  const update = fix.updates.find((u) => lineOf(u.build) === parsed[2]);
  if (update !== undefined) {
    const release = `${name} ${update.cu} ${update.update}`;
    const fixedBuild = buildOf(update.build);
    if (compareBuilds(parsed, fixedBuild) >= 0) {
      return { state: 'fixed', reason: `build ${text} has the fix (${release}, ${update.build})`, fixedBuild: update.build, update: release };
    }
    return { state: 'vulnerable', reason: `build ${text} is before the fix ${update.build} (${release})`, fixedBuild: update.build, update: release };
  }

  if (fix.fixedFrom !== null) {
    const from = buildOf(fix.fixedFrom);
    const fromCu = fix.fixedFromCu ?? cuOf(from) ?? 'its CU';
    if (compareBuilds(parsed, from) >= 0) {
      const reason =
        parsed[2] === from[2]
          ? `${text} (${fromCu}) shipped with the fix`
          : `build ${text} is in a CU after ${fromCu} (${fix.fixedFrom}), which shipped with the fix`;
      return { state: 'fixed', reason, fixedBuild: fix.fixedFrom, update: null };
    }
  }

  const fixedBuilds = listedFixedBuilds(fix);
  if (fixedBuilds.length === 0) {
    return vulnerable(`no update with the fix exists yet for ${name}: only the mitigation helps`);
  }
  const aboveAll = fixedBuilds.every((b) => compareBuilds(parsed, b) > 0);
  if (aboveAll && isNewerThanTable(parsed)) {
    return {
      state: 'unknown-newer',
      reason: `build ${text} is from a CU newer than the catalog knows, above every fixed build listed for ${name}: counted as fixed`,
      fixedBuild: null,
      update: null,
    };
  }
  const cu = cuOf(parsed);
  const which = cu === null ? `the CU of build ${text} (not in the build list)` : `${name} ${cu}`;
  return vulnerable(`${which} never received the fix: no update exists for this CU; move to a supported CU (${supportedCus(fix)})`);
}

/** Decides whether Windows has the fix, from the Windows version (os.xml) and the decisive file's version; unknown names what is missing. */
export function windowsFixState(mitigation: Mitigation, osVersion: string | null, fileVersion: string | null): WindowsFixState {
  if (mitigation.fix.kind !== 'windows') {
    throw new Error(`${mitigation.id} is fixed by Exchange builds, not by Windows: use fixState`);
  }
  const { file, update, versions } = mitigation.fix.windows;
  const fileParsed = fileVersion === null ? null : parseFileVersion(fileVersion);
  const osPrefix = osVersion === null ? null : threeParts(osVersion);

  let entry: WindowsFixVersion | undefined;
  if (osVersion !== null && osPrefix === null) {
    return unknown(`"${osVersion}" is not a Windows version: judged as vulnerable`, null);
  }
  if (osPrefix !== null) {
    entry = versions.find((v) => v.osVersionPrefix === osPrefix);
    if (entry === undefined) {
      return unknown(`Windows ${osVersion} is not a version the catalog knows for ${file}: judged as vulnerable`, null);
    }
  } else if (fileParsed !== null) {
    const prefix = fileParsed.slice(0, 3).join('.');
    entry = versions.find((v) => v.fileVersionPrefix === prefix);
    if (entry === undefined) {
      return unknown(`the Windows version is unknown (no os.xml) and ${file} ${formatBuild(fileParsed)} matches no Windows the catalog knows`, null);
    }
  } else {
    return unknown(`the Windows version and the ${file} version are both unknown (no os.xml, no ${file} version)`, null);
  }

  if (entry.fixed === null) {
    return { state: 'not-affected', reason: `${entry.os} is not affected`, os: entry.os, fixedVersion: null };
  }
  if (fileVersion === null) {
    return unknown(`the ${file} version is unknown on ${entry.os} (fixed from ${entry.fixed}, ${update})`, entry);
  }
  if (fileParsed === null) {
    return unknown(`"${fileVersion}" is not a file version of ${file} on ${entry.os}`, entry);
  }
  const actual = formatBuild(fileParsed);
  if (fileParsed.slice(0, 3).join('.') !== entry.fileVersionPrefix) {
    return unknown(`${file} ${actual} does not belong to ${entry.os} (expected ${entry.fileVersionPrefix}.x)`, entry);
  }
  const fixed = buildOf(entry.fixed);
  if (compareBuilds(fileParsed, fixed) >= 0) {
    return { state: 'fixed', reason: `${file} ${actual} has the fix (${update}: ${entry.fixed} on ${entry.os})`, os: entry.os, fixedVersion: entry.fixed };
  }
  return { state: 'vulnerable', reason: `${file} ${actual} is before the fix ${entry.fixed} (${entry.os}, ${update})`, os: entry.os, fixedVersion: entry.fixed };
}

function vulnerable(reason: string): FixState {
  return { state: 'vulnerable', reason, fixedBuild: null, update: null };
}

function unknown(reason: string, entry: WindowsFixVersion | null): WindowsFixState {
  return { state: 'unknown', reason, os: entry?.os ?? null, fixedVersion: entry?.fixed ?? null };
}

/** Every build the product's fix names: each update's and fixedFrom. */
function listedFixedBuilds(fix: ProductFix): Build[] {
  const builds = fix.updates.map((u: FixedUpdate) => buildOf(u.build));
  if (fix.fixedFrom !== null) builds.push(buildOf(fix.fixedFrom));
  return builds;
}

/** The CUs that have the fix, for advice ("CU14 from 15.2.1544.41, CU13 and later"). */
function supportedCus(fix: ProductFix): string {
  const parts = fix.updates.map((u) => `${u.cu} from ${u.build}`);
  if (fix.fixedFrom !== null) parts.push(`${fix.fixedFromCu ?? fix.fixedFrom} and later`);
  return parts.length > 3 ? [...parts.slice(0, 1), '...', ...parts.slice(-2)].join(', ') : parts.join(', ');
}

function buildOf(text: string): Build {
  const build = parseBuild(text);
  if (build === null) throw new Error(`catalog build "${text}" did not parse; parseCatalog should have rejected it`);
  return build;
}

function lineOf(text: string): number {
  return buildOf(text)[2];
}

/** A Windows file version, tolerating the " (WinBuild...)" suffix of FileVersion strings. */
function parseFileVersion(text: string): Build | null {
  const match = /^\s*(\d+\.\d+\.\d+\.\d+)/.exec(text);
  return match?.[1] === undefined ? null : parseBuild(match[1]);
}

function threeParts(text: string): string | null {
  const match = /^\s*(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (match === null) return null;
  return [match[1], match[2], match[3]].map(Number).join('.');
}
