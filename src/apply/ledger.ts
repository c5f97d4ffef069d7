/**
 * The ledger: what exmit has applied on a server now, with per resource the state it found and the
 * mitigations that hold it. Pure: reading validates untrusted JSON (an image's .exmit/ comes from
 * the server it was collected on); updating returns a new ledger.
 */
import { inputError } from '../errors.ts';
import type { AppPoolState, Change, HeldChange, ServiceState } from './changes.ts';

/** One applied mitigation. */
export interface LedgerMitigation {
  appliedAt: string;
  catalogSerial: number;
  runId: string;
  /** Resource keys it holds. */
  resources: string[];
}

/** One resource exmit changed, with what it found and what it set. */
export type LedgerResource =
  | { kind: 'service'; name: string; original: ServiceState; applied: ServiceState; holders: string[] }
  | { kind: 'app-pool'; name: string; original: AppPoolState | null; applied: AppPoolState; holders: string[] }
  | { kind: 'inbound-rule'; location: string; name: string; holders: string[] }
  | { kind: 'outbound-rule'; location: string; name: string; preCondition: string; holders: string[] }
  | { kind: 'remove-global-module'; name: string; image: string; xml: string | null; after: string | null; holders: string[] };

/** A file exmit wrote: its hash before exmit's first change (null: it did not exist) and after exmit's last write. */
export interface LedgerFile {
  original: string | null;
  written: string | null;
  /** Containers exmit created in applicationHost.config to hold its rules (taken out again when they hold nothing). */
  created?: { location: string; path: string[] }[];
  /** Someone else changed the file after exmit wrote it: it is never restored byte for byte again, only exmit's own parts are taken out. */
  foreign?: boolean;
}

/** The ledger file's content. */
export interface Ledger {
  version: 1;
  /** The run that wrote this ledger last. */
  lastRun: string | null;
  mitigations: Record<string, LedgerMitigation>;
  resources: Record<string, LedgerResource>;
  /** By file id: an image export name ("services.xml") or a Windows path in lower case. */
  files: Record<string, LedgerFile>;
  /** Interrupted runs that a later run repaired (their journals have no end line, and never will). */
  settled: string[];
}

/** An empty ledger: nothing applied. */
export function emptyLedger(): Ledger {
  return { version: 1, lastRun: null, mitigations: {}, resources: {}, files: {}, settled: [] };
}

const SHA = /^[0-9a-f]{64}$/;

/** Parses and validates ledger JSON; anything unexpected is an error naming the file and field (the file may come from a compromised server). */
export function parseLedger(text: string, file: string): Ledger {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw inputError(`${file}: not valid JSON: ${error instanceof Error ? error.message : String(error)}`, 'The ledger is written only by exmit; restore it from the journal folder beside it or remove the image\'s .exmit folder only if nothing was applied.');
  }
  const bad = (field: string): never => {
    throw inputError(`${file}: field ${field} is missing or has the wrong type`, 'The ledger is written only by exmit: someone changed it.');
  };
  const obj = (v: unknown, field: string): Record<string, unknown> => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : bad(field));
  const str = (v: unknown, field: string): string => (typeof v === 'string' ? v : bad(field));
  const strs = (v: unknown, field: string): string[] => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : bad(field));
  const bool = (v: unknown, field: string): boolean => (typeof v === 'boolean' ? v : bad(field));
  const sha = (v: unknown, field: string): string | null => (v === null ? null : typeof v === 'string' && SHA.test(v) ? v : bad(field));
  const root = obj(raw, 'the root');
  if (root['version'] !== 1) bad('version');
  const ledger = emptyLedger();
  ledger.lastRun = root['lastRun'] === null ? null : str(root['lastRun'], 'lastRun');
  ledger.settled = root['settled'] === undefined ? [] : strs(root['settled'], 'settled');
  for (const [id, value] of Object.entries(obj(root['mitigations'], 'mitigations'))) {
    const m = obj(value, `mitigations.${id}`);
    const serial = m['catalogSerial'];
    if (typeof serial !== 'number' || !Number.isSafeInteger(serial)) bad(`mitigations.${id}.catalogSerial`);
    ledger.mitigations[id] = { appliedAt: str(m['appliedAt'], `mitigations.${id}.appliedAt`), catalogSerial: serial as number, runId: str(m['runId'], `mitigations.${id}.runId`), resources: strs(m['resources'], `mitigations.${id}.resources`) };
  }
  for (const [key, value] of Object.entries(obj(root['resources'], 'resources'))) {
    const r = obj(value, `resources.${key}`);
    const f = `resources.${key}`;
    const holders = strs(r['holders'], `${f}.holders`);
    const service = (v: unknown, field: string): ServiceState => {
      const s = obj(v, field);
      return { status: str(s['status'], `${field}.status`), startType: str(s['startType'], `${field}.startType`) };
    };
    const pool = (v: unknown, field: string): AppPoolState => {
      const s = obj(v, field);
      return { state: str(s['state'], `${field}.state`), autoStart: bool(s['autoStart'], `${field}.autoStart`) };
    };
    switch (r['kind']) {
      case 'service':
        ledger.resources[key] = { kind: 'service', name: str(r['name'], `${f}.name`), original: service(r['original'], `${f}.original`), applied: service(r['applied'], `${f}.applied`), holders };
        break;
      case 'app-pool':
        ledger.resources[key] = { kind: 'app-pool', name: str(r['name'], `${f}.name`), original: r['original'] === null ? null : pool(r['original'], `${f}.original`), applied: pool(r['applied'], `${f}.applied`), holders };
        break;
      case 'inbound-rule':
        ledger.resources[key] = { kind: 'inbound-rule', location: str(r['location'], `${f}.location`), name: str(r['name'], `${f}.name`), holders };
        break;
      case 'outbound-rule':
        ledger.resources[key] = { kind: 'outbound-rule', location: str(r['location'], `${f}.location`), name: str(r['name'], `${f}.name`), preCondition: str(r['preCondition'], `${f}.preCondition`), holders };
        break;
      case 'remove-global-module':
        ledger.resources[key] = {
          kind: 'remove-global-module',
          name: str(r['name'], `${f}.name`),
          image: str(r['image'], `${f}.image`),
          xml: r['xml'] === null || r['xml'] === undefined ? null : str(r['xml'], `${f}.xml`),
          after: r['after'] === null || r['after'] === undefined ? null : str(r['after'], `${f}.after`),
          holders,
        };
        break;
      default:
        bad(`${f}.kind`);
    }
  }
  for (const [id, value] of Object.entries(obj(root['files'], 'files'))) {
    const v = obj(value, `files.${id}`);
    const created = v['created'] === undefined ? undefined : (Array.isArray(v['created']) ? v['created'] : bad(`files.${id}.created`)).map((c: unknown, i: number) => {
      const o = obj(c, `files.${id}.created[${i}]`);
      return { location: str(o['location'], `files.${id}.created[${i}].location`), path: strs(o['path'], `files.${id}.created[${i}].path`) };
    });
    const foreign = v['foreign'] === undefined ? undefined : bool(v['foreign'], `files.${id}.foreign`);
    ledger.files[id] = { original: sha(v['original'], `files.${id}.original`), written: sha(v['written'], `files.${id}.written`), ...(created === undefined ? {} : { created }), ...(foreign === true ? { foreign } : {}) };
  }
  for (const [id, m] of Object.entries(ledger.mitigations)) {
    for (const key of m.resources) if (ledger.resources[key] === undefined) bad(`mitigations.${id}.resources (${key} is not in resources)`);
  }
  return ledger;
}

/** Serialises a ledger (stable key order, one trailing newline). */
export function serializeLedger(ledger: Ledger): string {
  return JSON.stringify(ledger, null, 2) + '\n';
}

function resourceOf(change: Change, holders: string[]): LedgerResource {
  switch (change.kind) {
    case 'service':
      return { kind: 'service', name: change.name, original: change.before, applied: change.after, holders };
    case 'app-pool':
      return { kind: 'app-pool', name: change.name, original: change.before, applied: change.after, holders };
    case 'inbound-rule':
      return { kind: 'inbound-rule', location: change.location, name: change.name, holders };
    case 'outbound-rule':
      return { kind: 'outbound-rule', location: change.location, name: change.name, preCondition: change.action.precondition.name, holders };
    case 'remove-global-module':
      return { kind: 'remove-global-module', name: change.name, image: change.image, xml: change.xml, after: change.after, holders };
  }
}

/** The ledger after an apply run: new resources recorded with their original state, holders added, mitigations recorded. */
export function ledgerAfterApply(
  before: Ledger,
  run: { runId: string; at: string; catalogSerial: number },
  changes: readonly HeldChange[],
  byMitigation: ReadonlyMap<string, string[]>,
  files: Record<string, LedgerFile>,
): Ledger {
  const next: Ledger = structuredClone(before);
  next.lastRun = run.runId;
  for (const held of changes) {
    const existing = next.resources[held.change.key];
    if (existing === undefined) next.resources[held.change.key] = resourceOf(held.change, [...held.holders]);
    else for (const h of held.holders) if (!existing.holders.includes(h)) existing.holders.push(h);
  }
  for (const [id, keys] of byMitigation) {
    const all = [...new Set([...(next.mitigations[id]?.resources ?? []), ...keys])];
    // Resources exmit already holds for another mitigation are shared: record this one as a holder too.
    for (const key of all) {
      const r = next.resources[key];
      if (r !== undefined && !r.holders.includes(id)) r.holders.push(id);
    }
    next.mitigations[id] = { appliedAt: run.at, catalogSerial: run.catalogSerial, runId: run.runId, resources: all.filter((k) => next.resources[k] !== undefined) };
  }
  for (const [id, f] of Object.entries(files)) {
    const prior = next.files[id];
    const created = [...(prior?.created ?? []), ...(f.created ?? [])];
    const foreign = prior?.foreign === true || f.foreign === true;
    next.files[id] = { original: prior !== undefined ? prior.original : f.original, written: f.written, ...(created.length > 0 ? { created } : {}), ...(foreign ? { foreign } : {}) };
  }
  return next;
}

/** What a rollback of `ids` releases: resources whose last holders go (to restore) and the ledger afterwards. */
export function ledgerAfterRollback(before: Ledger, ids: readonly string[], runId: string, files: Record<string, LedgerFile>): { released: { key: string; resource: LedgerResource }[]; ledger: Ledger } {
  const next: Ledger = structuredClone(before);
  next.lastRun = runId;
  const released: { key: string; resource: LedgerResource }[] = [];
  for (const id of ids) delete next.mitigations[id];
  for (const [key, r] of Object.entries(next.resources)) {
    r.holders = r.holders.filter((h) => !ids.includes(h));
    if (r.holders.length === 0) {
      const original = before.resources[key];
      if (original !== undefined) released.push({ key, resource: original });
      delete next.resources[key];
    }
  }
  for (const [id, f] of Object.entries(files)) {
    const prior = next.files[id];
    const foreign = prior?.foreign === true || f.foreign === true;
    next.files[id] = { original: prior !== undefined ? prior.original : f.original, written: f.written, ...(f.created !== undefined ? { created: f.created } : prior?.created !== undefined ? { created: prior.created } : {}), ...(foreign ? { foreign } : {}) };
  }
  // A file is no longer exmit's once nothing exmit holds lives in it; the caller passes that as written === original.
  for (const [id, f] of Object.entries(next.files)) if (f.written === f.original) delete next.files[id];
  return { released, ledger: next };
}
