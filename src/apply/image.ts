/**
 * Apply and rollback on a server image: every change becomes a whole-file write, computed here by
 * splicing (applicationHost.config) or replacing values (services.xml, apppools.xml) in the file's
 * own text and written back in its own encoding, BOM and newline style. Pure.
 */
import { inputError } from '../errors.ts';
import { decodeText, encodeText, sha256Of, type TextFormat } from '../text/encoding.ts';
import type { AppPoolFact } from '../facts.ts';
import type { HeldChange } from './changes.ts';
import type { Ledger, LedgerFile, LedgerResource } from './ledger.ts';
import { applyToApphost, removeEmptyCreated, restoreInApphost, type CreatedContainer } from './apphost-edit.ts';
import { newAppPoolsXml, setAppPoolState, setServiceState } from './clixml-edit.ts';

/** The three files exmit changes in an image. */
export type ImageFileId = 'apphost' | 'services' | 'apppools';

/** A file of the image as read now. */
export interface ImageFile {
  id: ImageFileId;
  /** The engine's step path: an export name or a Windows path. */
  path: string;
  /** For messages and diffs. */
  label: string;
  /** null: the file does not exist. */
  bytes: Uint8Array | null;
}

/** The engine's file step (see the engine's execute). */
export interface FileStep {
  kind: 'file';
  path: string;
  before: string | null;
  after: { data: string; sha256: string } | null;
}

/** A file's content before and after a run, for diffs and the ledger. */
export interface FileChange {
  file: ImageFile;
  /** applicationHost.config: containers exmit created (apply) or that still stand (rollback). */
  created?: CreatedContainer[];
  /** Rollback found the file changed by someone else since exmit wrote it: only exmit's own parts were taken out. */
  foreign?: boolean;
  beforeText: string | null;
  afterText: string | null;
  afterBytes: Uint8Array | null;
  step: FileStep;
}

/** Which image file holds a resource. */
export function fileOfResource(kind: LedgerResource['kind'] | HeldChange['change']['kind']): ImageFileId {
  if (kind === 'service') return 'services';
  if (kind === 'app-pool') return 'apppools';
  return 'apphost';
}

interface Editable {
  file: ImageFile;
  text: string;
  format: TextFormat;
  original: string | null;
}

function editable(file: ImageFile, fallback: TextFormat): Editable {
  if (file.bytes === null) return { file, text: '', format: fallback, original: null };
  const decoded = decodeText(file.bytes);
  const format: TextFormat = { encoding: decoded.encoding, bom: decoded.bom, newline: decoded.newline };
  if (sha256Of(encodeText(decoded.text, format)) !== sha256Of(file.bytes)) {
    throw inputError(`${file.label}: its bytes do not decode and encode back to themselves (not valid ${decoded.encoding}), so exmit cannot change it and keep the rest exactly`, 'Collect the image again with "exmit collect".');
  }
  return { file, text: decoded.text, format, original: decoded.text };
}

function newlineFor(format: TextFormat): string {
  return format.newline === '\n' ? '\n' : '\r\n';
}

function finish(e: Editable, deleted = false): FileChange | null {
  const before = e.file.bytes === null ? null : sha256Of(e.file.bytes);
  if (deleted) {
    if (e.file.bytes === null) return null;
    return { file: e.file, beforeText: e.original, afterText: null, afterBytes: null, step: { kind: 'file', path: e.file.path, before, after: null } };
  }
  if (e.original !== null && e.text === e.original) return null;
  const bytes = encodeText(e.text, e.format);
  return { file: e.file, beforeText: e.original, afterText: e.text, afterBytes: bytes, step: { kind: 'file', path: e.file.path, before, after: { data: Buffer.from(bytes).toString('base64'), sha256: sha256Of(bytes) } } };
}

const DEFAULT_EXPORT_FORMAT: TextFormat = { encoding: 'utf-16le', bom: true, newline: '\r\n' };

/** The file writes that make the planned changes, in the order of the changes' files (services, app pools, then applicationHost.config). */
export function imageApplyWrites(files: Record<ImageFileId, ImageFile>, changes: readonly HeldChange[], apphostPools: readonly AppPoolFact[]): FileChange[] {
  const apphost = editable(files.apphost, DEFAULT_EXPORT_FORMAT);
  const servicesFormat = files.services.bytes === null ? DEFAULT_EXPORT_FORMAT : editable(files.services, DEFAULT_EXPORT_FORMAT).format;
  const services = files.services.bytes === null ? null : editable(files.services, DEFAULT_EXPORT_FORMAT);
  const pools = editable(files.apppools, servicesFormat);
  const created: CreatedContainer[] = [];
  for (const { change } of changes) {
    switch (change.kind) {
      case 'service':
        if (services === null) throw inputError(`${files.services.label} is missing: exmit cannot stop ${change.name} in this image`, 'Add the Get-Service export (services.xml) to the image, or collect it again.');
        services.text = setServiceState(services.text, files.services.label, change.name, change.after);
        break;
      case 'app-pool':
        if (pools.original === null && pools.text === '') {
          pools.text = newAppPoolsXml(apphostPools, newlineFor(pools.format));
          if (!apphostPools.some((p) => p.name.toLowerCase() === change.name.toLowerCase())) throw inputError(`${files.apphost.label}: no application pool ${change.name}`);
        }
        pools.text = setAppPoolState(pools.text, files.apppools.label, change.name, change.after);
        break;
      default:
        apphost.text = applyToApphost(apphost.text, files.apphost.label, change, created);
    }
  }
  const apphostChange = finish(apphost);
  if (apphostChange !== null) apphostChange.created = created;
  return [services === null ? null : finish(services), finish(pools), apphostChange].filter((c): c is FileChange => c !== null);
}

/** The application pools applicationHost.config defines, with the state IIS gives them at start (autoStart true: started): what a new apppools.xml records. */
export function poolsFromApphost(pools: readonly { name: string; autoStart: boolean; startMode: string }[]): AppPoolFact[] {
  return pools.map((p) => ({ name: p.name, state: p.autoStart ? 'Started' : 'Stopped', autoStart: p.autoStart, startMode: p.startMode }));
}

/** A resource someone else changed since exmit set it: left as it is. */
export interface RestoreConflict {
  key: string;
  resource: LedgerResource;
  detail: string;
}

/** The file writes of a rollback: byte-exact restores where exmit's writes are the last, else exmit's own elements and values taken out; with the conflicts left alone. */
export function imageRollbackWrites(
  files: Record<ImageFileId, ImageFile>,
  ledger: Ledger,
  released: readonly { key: string; resource: LedgerResource }[],
  originals: ReadonlyMap<string, Uint8Array>,
  current: { service(name: string): { status: string; startType: string } | null; appPool(name: string): { state: string; autoStart: boolean } | null },
): { writes: FileChange[]; conflicts: RestoreConflict[]; partial: ImageFileId[] } {
  const conflicts: RestoreConflict[] = [];
  const partial: ImageFileId[] = [];
  const writes: FileChange[] = [];
  const releasedKeys = new Set(released.map((r) => r.key));
  for (const id of ['apphost', 'services', 'apppools'] as const) {
    const mine = released.filter((r) => fileOfResource(r.resource.kind) === id);
    if (mine.length === 0) continue;
    const file = files[id];
    const record: LedgerFile | undefined = ledger.files[id];
    const remaining = Object.entries(ledger.resources).filter(([key, r]) => fileOfResource(r.kind) === id && !releasedKeys.has(key));
    const currentSha = file.bytes === null ? null : sha256Of(file.bytes);
    // Byte-exact: exmit wrote this file last and nothing exmit holds stays in it.
    if (record !== undefined && record.foreign !== true && remaining.length === 0 && currentSha !== null && currentSha === record.written) {
      const original = record.original === null ? null : originals.get(record.original);
      if (record.original === null) {
        writes.push({ file, beforeText: decodeText(file.bytes ?? new Uint8Array()).text, afterText: null, afterBytes: null, step: { kind: 'file', path: file.path, before: currentSha, after: null } });
        continue;
      }
      if (original !== undefined && original !== null && sha256Of(original) === record.original) {
        writes.push({
          file,
          beforeText: decodeText(file.bytes ?? new Uint8Array()).text,
          afterText: decodeText(original).text,
          afterBytes: original,
          step: { kind: 'file', path: file.path, before: currentSha, after: { data: Buffer.from(original).toString('base64'), sha256: record.original } },
        });
        continue;
      }
    }
    if (file.bytes === null) {
      for (const r of mine) conflicts.push({ key: r.key, resource: r.resource, detail: `${file.label} no longer exists` });
      continue;
    }
    partial.push(id);
    const e = editable(file, DEFAULT_EXPORT_FORMAT);
    for (const { key, resource } of mine) {
      if (resource.kind === 'service') {
        const now = current.service(resource.name);
        if (now === null || now.status !== resource.applied.status || now.startType !== resource.applied.startType) {
          conflicts.push({ key, resource, detail: `service ${resource.name} is ${now === null ? 'gone' : `${now.status}, ${now.startType}`} now, not what exmit set (${resource.applied.status}, ${resource.applied.startType}): left as it is` });
          continue;
        }
        e.text = setServiceState(e.text, file.label, resource.name, resource.original);
      } else if (resource.kind === 'app-pool') {
        const now = current.appPool(resource.name);
        if (now === null || now.state !== resource.applied.state || now.autoStart !== resource.applied.autoStart) {
          conflicts.push({ key, resource, detail: `app pool ${resource.name} is ${now === null ? 'gone' : `${now.state}, autoStart ${String(now.autoStart)}`} now, not what exmit set: left as it is` });
          continue;
        }
        if (resource.original !== null) e.text = setAppPoolState(e.text, file.label, resource.name, resource.original);
      } else {
        e.text = restoreInApphost(e.text, file.label, resource).text;
      }
    }
    let created: CreatedContainer[] | undefined;
    if (id === 'apphost' && record?.created !== undefined) {
      const cleaned = removeEmptyCreated(e.text, file.label, record.created);
      e.text = cleaned.text;
      created = cleaned.remaining;
    }
    const change = finish(e);
    if (change !== null) {
      if (created !== undefined) change.created = created;
      if (record !== undefined && (record.foreign === true || currentSha !== record.written)) change.foreign = true;
      writes.push(change);
    }
  }
  return { writes, conflicts, partial };
}
