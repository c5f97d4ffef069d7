/**
 * The serial floor: the highest serial (and the SHA-256 of its bytes) of any catalog from outside
 * the package that was accepted, kept in floor.json in the state folder. It does not expire with the
 * cached catalog nor go away with a retired key, so an older signed catalog can never be replayed:
 * every catalog from outside the package is compared with it.
 */
import path from 'node:path';
import { inputError } from '../errors.ts';
import { ensureStateDir, readStateFile, writeFileAtomic, currentRunner, type Runner } from './secure.ts';

/** The floor as read, with the file it came from (for messages). */
export interface Floor {
  serial: number;
  sha256: string;
  file: string;
}

/** What a catalog is against the floor: above it, the very catalog that set it, or older (readable, never applied). */
export type FloorVerdict = 'newer' | 'same' | 'read-only';

/** floor.json in the state folder. */
export function floorPath(stateDir: string): string {
  return path.join(stateDir, 'floor.json');
}

/** Reads the floor after the state folder and file checks; null when none was recorded. A damaged floor is an error naming the file. */
export function readFloor(stateDir: string, runner: Runner = currentRunner()): Floor | null {
  const file = floorPath(stateDir);
  const bytes = readStateFile(stateDir, file, 4096, runner);
  if (bytes === null) return null;
  const damaged = (what: string) => inputError(`${file}: damaged serial floor (${what})`, `Check the state folder; only if you trust the newest catalog you use, remove ${file} and run "exmit catalog update".`);
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw damaged('not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw damaged('not an object');
  const record = value as Record<string, unknown>;
  const serial = record['serial'];
  const sha256 = record['sha256'];
  if (typeof serial !== 'number' || !Number.isSafeInteger(serial) || serial < 0) throw damaged('serial is not a number');
  if (typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) throw damaged('sha256 is not 64 hex digits');
  return { serial, sha256, file };
}

/**
 * Compares a catalog with the floor. Higher: newer; the same serial with the same bytes: same.
 * Older, or the same serial with other bytes: read-only for `read` (audits, lists), refused as a
 * replay for `apply`.
 */
export function checkFloor(floor: Floor | null, serial: number, sha256: string, what: string, purpose: 'read' | 'apply'): FloorVerdict {
  if (floor === null || serial > floor.serial) return 'newer';
  if (serial === floor.serial && sha256 === floor.sha256) return 'same';
  if (purpose === 'read') return 'read-only';
  throw inputError(`${what}: ${problemOf(floor, serial)}: refused as a replay`, 'A newer catalog needs a higher serial (YYYYMMDDNN); an older signed catalog may be audited against, never applied.');
}

/** The warning for a catalog checkFloor called read-only. */
export function floorWarning(floor: Floor, serial: number, what: string): string {
  return `${what}: ${problemOf(floor, serial)}: used read-only (apply refuses it)`;
}

function problemOf(floor: Floor, serial: number): string {
  return serial < floor.serial
    ? `serial ${serial} is older than the highest serial accepted before (${floor.serial}, recorded in ${floor.file})`
    : `serial ${serial} is the same serial as the highest accepted before but other content (recorded in ${floor.file})`;
}

/**
 * Raises the floor to this catalog when it is higher (the caller holds the state lock), writing
 * floor.json atomically: a temporary file, flushed, renamed over it, and the folder flushed.
 */
export function raiseFloor(stateDir: string, serial: number, sha256: string, runner: Runner = currentRunner()): void {
  const floor = readFloor(stateDir, runner);
  if (floor !== null && floor.serial >= serial) return;
  ensureStateDir(stateDir, runner);
  writeFileAtomic(floorPath(stateDir), JSON.stringify({ serial, sha256 }) + '\n');
}
