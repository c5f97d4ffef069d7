/** Which mitigations an apply or rollback run is about: ids or CVE numbers as typed, or --needed / --all. */
import type { Catalog, Mitigation } from '../catalog/types.ts';
import type { AuditEntry, Status } from '../audit/plan.ts';
import { usageError } from '../errors.ts';

/** Statuses that `apply --needed` acts on. */
export const NEEDS_APPLYING: ReadonlySet<Status> = new Set<Status>(['needed', 'partial', 'outdated']);

/** Statuses for which an explicitly named mitigation is skipped (exit 0, outcome `skipped`). */
const SKIPPED: ReadonlySet<Status> = new Set<Status>(['patch-only', 'fixed', 'not-applicable', 'blocked']);

/** One selected mitigation and, when it will not be applied, why. */
export interface Selected {
  mitigation: Mitigation;
  entry: AuditEntry;
  /** Why it is skipped (patch-only, fixed, not-applicable, blocked, breaking without --allow-breaking); null when it goes ahead. */
  skip: string | null;
  /** Already in effect: nothing to change. */
  already: boolean;
}

/** Resolves typed ids and CVE numbers to catalog ids, in the order typed, without duplicates; an unknown one is a usage error naming it and the nearest id. */
export function resolveIds(catalog: Catalog, typed: readonly string[]): Mitigation[] {
  const out: Mitigation[] = [];
  for (const raw of typed) {
    const wanted = raw.trim().toLowerCase();
    const byId = catalog.mitigations.find((m) => m.id.toLowerCase() === wanted);
    const byCve = byId === undefined ? catalog.mitigations.filter((m) => m.cves.some((c) => c.toLowerCase() === wanted)) : [];
    const found = byId !== undefined ? [byId] : byCve;
    if (found.length === 0) {
      const near = nearestId(catalog, wanted);
      throw usageError(`unknown mitigation id or CVE: "${raw}"`, near !== null ? `Did you mean "${near}"? "exmit catalog list" shows every id.` : '"exmit catalog list" shows every id and CVE.');
    }
    for (const m of found) if (!out.includes(m)) out.push(m);
  }
  return out;
}

/** What `apply` will act on: the named mitigations, or with --needed every one whose status needs it (breaking ones only with --allow-breaking or when named). */
export function selectForApply(catalog: Catalog, audit: readonly AuditEntry[], request: { ids: readonly string[]; needed: boolean; allowBreaking: boolean }): Selected[] {
  const entryOf = (m: Mitigation): AuditEntry => {
    const entry = audit.find((e) => e.id === m.id);
    if (entry === undefined) throw new Error(`audit has no entry for ${m.id}`);
    return entry;
  };
  const named = resolveIds(catalog, request.ids);
  const chosen: Mitigation[] = [...named];
  if (request.needed) {
    // Those already in effect are listed too (outcome already-mitigated), so that a second run says so.
    for (const m of catalog.mitigations) if (!chosen.includes(m) && (NEEDS_APPLYING.has(entryOf(m).status) || entryOf(m).status === 'mitigated')) chosen.push(m);
  }
  return chosen.map((m) => {
    const entry = entryOf(m);
    const isNamed = named.includes(m);
    if (SKIPPED.has(entry.status)) return { mitigation: m, entry, skip: skipReason(entry), already: false };
    if (entry.status === 'mitigated') return { mitigation: m, entry, skip: null, already: true };
    if (m.breaks !== null && !isNamed && !request.allowBreaking) {
      return { mitigation: m, entry, skip: `breaks ${m.breaks}: not applied by --needed without --allow-breaking (name it, or add --allow-breaking)`, already: false };
    }
    return { mitigation: m, entry, skip: null, already: false };
  });
}

function skipReason(entry: AuditEntry): string {
  switch (entry.status) {
    case 'patch-only':
      return `patch-only: ${entry.reason}`;
    case 'fixed':
      return `fixed: ${entry.reason}`;
    case 'blocked':
      return `blocked: ${entry.reason}`;
    default:
      return `not applicable: ${entry.reason}`;
  }
}

/** The catalog id closest to what was typed (edit distance at most 4), for "did you mean". */
export function nearestId(catalog: Catalog, typed: string): string | null {
  let best: string | null = null;
  let bestDistance = 5;
  for (const m of catalog.mitigations) {
    const d = editDistance(typed, m.id.toLowerCase());
    if (d < bestDistance) {
      best = m.id;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] ?? 0;
      row[j] = Math.min(current + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] ?? 0;
}
