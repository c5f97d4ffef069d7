/**
 * The support state of a server's CU, derived from Microsoft's build list alone (never from the clock),
 * so that it stays true when the list is regenerated: whether the CU received its product's newest
 * security update, and whether the product still gets updates at all.
 */
import type { Product } from '../catalog/types.ts';
import { BUILD_TABLE, entriesOfCu, entriesOfProduct, type BuildEntry } from './build-table.ts';
import { productName as nameOf } from '../catalog/fixed.ts';

/** `current`: the CU got the product's newest security update; `cu-behind`: it did not; `product-ended`: the product gets none any more. */
export type SupportState = 'current' | 'cu-behind' | 'product-ended';

/** A release as the support state names it. */
export interface UpdateRef {
  name: string;
  build: string;
  releaseDate: string;
}

/** What `detect` and `audit` report as `support`. */
export interface Support {
  state: SupportState;
  reason: string;
  /** The newest security update of the server's CU (or the CU itself when it never got one); null when the list does not know the CU. */
  lastUpdate: UpdateRef | null;
}

/** A product whose newest security update is this many days older than the newest of any product in the list has ended. */
export const PRODUCT_ENDED_AFTER_DAYS = 365;

/** True for a security update (SU, SUv2), false for a CU itself or a hotfix update (HU). */
export function isSecurityUpdate(entry: BuildEntry): boolean {
  return entry.update !== null && /SU(v\d+)?$/.test(entry.update);
}

/** The newest security update date of a product and every release of that date (one per CU that got it); null when the product has none. */
export function newestSecurityUpdate(product: Product, table: readonly BuildEntry[] = BUILD_TABLE): { releaseDate: string; releases: BuildEntry[] } | null {
  const updates = table.filter((e) => e.product === product && isSecurityUpdate(e));
  if (updates.length === 0) return null;
  const releaseDate = updates.map((e) => e.releaseDate).reduce((a, b) => (b > a ? b : a));
  return { releaseDate, releases: updates.filter((e) => e.releaseDate === releaseDate) };
}

/** The newest security update date of any product in the list. */
function newestOfAll(table: readonly BuildEntry[]): string {
  return table.filter(isSecurityUpdate).map((e) => e.releaseDate).reduce((a, b) => (b > a ? b : a), '');
}

function daysBetween(older: string, newer: string): number {
  return Math.round((Date.parse(newer) - Date.parse(older)) / 86_400_000);
}

function ref(entry: BuildEntry): UpdateRef {
  return { name: entry.name, build: entry.build, releaseDate: entry.releaseDate };
}

/** The newest security update of one CU, or the CU's own release when it never got one; null when the list does not know the CU. */
export function lastUpdateOfCu(product: Product, cu: string, table: readonly BuildEntry[] = BUILD_TABLE): BuildEntry | null {
  const releases = table === BUILD_TABLE ? entriesOfCu(product, cu) : table.filter((e) => e.product === product && e.cu === cu);
  return releases.filter(isSecurityUpdate).at(-1) ?? releases.find((e) => e.update === null) ?? releases.at(-1) ?? null;
}

/** "CU14 and CU15" from the releases of one update. */
function listCus(releases: BuildEntry[]): string {
  const cus = [...new Set(releases.map((e) => e.cu))];
  return cus.length <= 1 ? (cus[0] ?? '') : `${cus.slice(0, -1).join(', ')} and ${cus.at(-1)}`;
}

/**
 * The support state of a server from its product and CU. `newerThanTable`: the CU is newer than
 * anything the list knows (then current: the list cannot say otherwise).
 */
export function supportOf(product: Product, cu: string | null, newerThanTable: boolean, table: readonly BuildEntry[] = BUILD_TABLE): Support {
  const productName = nameOf(product);
  if (cu === null && newerThanTable) {
    return { state: 'current', reason: `its CU is newer than the build list knows for ${productName}`, lastUpdate: null };
  }
  const last = cu === null ? null : lastUpdateOfCu(product, cu, table);
  const lastUpdate = last === null ? null : ref(last);
  const newest = newestSecurityUpdate(product, table);
  const newestAll = newestOfAll(table);
  if (newest !== null && newestAll !== '' && daysBetween(newest.releaseDate, newestAll) > PRODUCT_ENDED_AFTER_DAYS) {
    const lastRelease = newest.releases.at(-1);
    return {
      state: 'product-ended',
      reason: `${productName} has had no security update since ${newest.releaseDate}${lastRelease !== undefined ? ` (${updateLabel(lastRelease)})` : ''} while other products have had them since: it gets no more updates, and every fix after ${lastUpdate !== null ? lastUpdate.name : 'its last update'} is missing`,
      lastUpdate,
    };
  }
  if (newest === null) {
    return { state: 'current', reason: `the build list has no security update for ${productName}`, lastUpdate };
  }
  const label = updateLabel(newest.releases[0] as BuildEntry);
  if (cu === null) {
    return { state: 'cu-behind', reason: `the build list does not know this CU; ${productName}'s newest security update (${label}, ${newest.releaseDate}) went to ${listCus(newest.releases)}`, lastUpdate };
  }
  if (newest.releases.some((e) => e.cu === cu)) {
    return { state: 'current', reason: `${cu} received ${productName}'s newest security update (${label}, ${newest.releaseDate})`, lastUpdate };
  }
  return {
    state: 'cu-behind',
    reason: `${productName}'s newest security update (${label}, ${newest.releaseDate}) went to ${listCus(newest.releases)}, not to ${cu}: ${cu} gets no more updates, and every fix after ${lastUpdate !== null ? `${lastUpdate.name} (${lastUpdate.releaseDate})` : 'its last update'} is missing`,
    lastUpdate,
  };
}

function updateLabel(entry: BuildEntry): string {
  return entry.update ?? entry.name;
}

/** The CUs of a product that received its newest security update, newest CU last (where a CU move should go). */
export function currentCus(product: Product, table: readonly BuildEntry[] = BUILD_TABLE): string[] {
  const newest = newestSecurityUpdate(product, table);
  if (newest === null) {
    const cus = (table === BUILD_TABLE ? entriesOfProduct(product) : table.filter((e) => e.product === product)).filter((e) => e.update === null);
    return cus.length > 0 ? [(cus.at(-1) as BuildEntry).cu] : [];
  }
  return [...new Set(newest.releases.sort((a, b) => a.parsed[2] - b.parsed[2]).map((e) => e.cu))];
}
