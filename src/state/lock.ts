/**
 * One writer at a time in the state folder: `catalog update` (and a run that raises the serial
 * floor) holds lock.json, created exclusively, for as long as it writes. A lock left by a process
 * that no longer runs is taken over.
 */
import { closeSync, constants, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { inputError } from '../errors.ts';

/** lock.json in the state folder. */
export function lockPath(stateDir: string): string {
  return path.join(stateDir, 'lock.json');
}

/** How long to wait for another writer before giving up, and how a process is known to be alive (tests). */
export interface LockOptions {
  waitMs?: number;
  isAlive?: (pid: number) => boolean;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The pid recorded in a lock file; null when it cannot be read (being written, or not ours). */
function lockOwner(file: string): number | null {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown };
    return typeof value.pid === 'number' && Number.isSafeInteger(value.pid) && value.pid > 0 ? value.pid : null;
  } catch {
    return null;
  }
}

/** Runs fn holding the state folder's lock (the folder must exist); refuses after waitMs when another running exmit holds it. */
export async function withStateLock<T>(stateDir: string, fn: () => Promise<T> | T, options: LockOptions = {}): Promise<T> {
  const file = lockPath(stateDir);
  const isAlive = options.isAlive ?? processAlive;
  const deadline = Date.now() + (options.waitMs ?? 2000);
  let fd: number;
  for (;;) {
    try {
      fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw inputError(`cannot lock the state folder (${file}): ${(error as Error).message}`);
    }
    const owner = lockOwner(file);
    if (owner !== null && owner !== process.pid && !isAlive(owner)) {
      try {
        unlinkSync(file);
      } catch {
        // another process took it over first
      }
      continue;
    }
    if (Date.now() >= deadline) {
      throw inputError(
        `the state folder is locked by another exmit${owner === null ? '' : ` (process ${owner})`} that is updating it (${file})`,
        `Wait for it to finish and run again; if no exmit runs, remove ${file}.`,
      );
    }
    await sleep(100);
  }
  try {
    writeSync(fd, JSON.stringify({ pid: process.pid, since: new Date().toISOString() }));
  } finally {
    closeSync(fd);
  }
  try {
    return await fn();
  } finally {
    try {
      unlinkSync(file);
    } catch {
      // already gone: nothing to release
    }
  }
}
