/**
 * The state folder's owner and access, checked every time keys, configuration or the cache are read
 * from it, and the owner-only, atomic way files are written there.
 *
 * POSIX: a folder or file must be owned by the user running exmit (or root) and not writable by
 * group or others. Windows: fs.stat carries no ACL, so only the kind of entry is checked here (no
 * links); the Administrators-and-SYSTEM-only ACL check needs the PowerShell engine (docs/feeds.md).
 */
import { closeSync, constants, fstatSync, fsyncSync, mkdirSync, openSync, readSync, realpathSync, renameSync, unlinkSync, writeSync, lstatSync, type Stats } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { inputError } from '../errors.ts';

/** Who runs exmit and on what, for the checks (tests pass other values). */
export interface Runner {
  platform: NodeJS.Platform;
  /** The effective uid on POSIX; -1 on Windows. */
  uid: number;
}

/** The current process as a Runner. */
export function currentRunner(): Runner {
  return { platform: process.platform, uid: typeof process.geteuid === 'function' ? process.geteuid() : -1 };
}

function userName(uid: number): string {
  try {
    const info = os.userInfo();
    if (info.uid === uid) return info.username;
  } catch {
    // no passwd entry: the uid will do
  }
  return String(uid);
}

/** Refuses an entry another user owns or that group or others may write (exit 1 naming the path and the fix). */
export function checkOwnerAndMode(target: string, stats: Stats, kind: 'folder' | 'file', runner: Runner = currentRunner()): void {
  if (runner.platform === 'win32') return;
  if (stats.uid !== runner.uid && stats.uid !== 0) {
    throw inputError(
      `state ${kind} ${target} is owned by uid ${stats.uid}, not by the user running exmit (uid ${runner.uid}): refused, since another user could have planted it`,
      `If it is yours, run: chown ${userName(runner.uid)} "${target}"; otherwise remove it.`,
    );
  }
  if ((stats.mode & 0o022) !== 0) {
    const mode = (stats.mode & 0o777).toString(8).padStart(3, '0');
    throw inputError(
      `state ${kind} ${target} is writable by group or others (mode ${mode}): refused, since another user could have changed it`,
      `Check its content, then run: chmod ${kind === 'folder' ? '700' : '600'} "${target}"`,
    );
  }
}

/** Checks the state folder itself (never a link) and, on POSIX, its parent folders; false when it does not exist. */
export function checkStateDir(dir: string, runner: Runner = currentRunner()): boolean {
  let stats: Stats;
  try {
    stats = lstatSync(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
      checkParents(dir, runner);
      return false;
    }
    throw inputError(`state folder ${dir} cannot be read: ${(error as Error).message}`, 'Run exmit as the user (on a server: elevated) that owns the state folder.');
  }
  if (stats.isSymbolicLink()) throw inputError(`state folder ${dir} is a symbolic link: refused, since whoever can change the link chooses the keys and catalog exmit trusts`, `Point --state-dir at the real folder (${safeRealpath(dir)}), or replace the link with a folder.`);
  if (!stats.isDirectory()) throw inputError(`state folder ${dir} is not a folder`, 'Point --state-dir at a folder, or remove that file.');
  checkOwnerAndMode(dir, stats, 'folder', runner);
  checkParents(dir, runner);
  return true;
}

function safeRealpath(dir: string): string {
  try {
    return realpathSync(dir);
  } catch {
    return 'where it points';
  }
}

/**
 * POSIX: refuses a state folder whose existing parent folders (as written, and where links in them
 * lead) another user owns, or group or others may write without the sticky bit: whoever can rename
 * entries in a parent can swap the state folder for their own. /tmp (sticky, root's) is fine.
 */
export function checkParents(dir: string, runner: Runner = currentRunner()): void {
  if (runner.platform === 'win32') return;
  const folders = new Set<string>();
  for (let current = path.dirname(path.resolve(dir)); ; current = path.dirname(current)) {
    folders.add(current);
    if (path.dirname(current) === current) break;
  }
  for (const folder of [...folders]) {
    const real = safeRealpath(folder);
    if (real === 'where it points' || real === folder) continue;
    for (let current = real; ; current = path.dirname(current)) {
      folders.add(current);
      if (path.dirname(current) === current) break;
    }
  }
  for (const folder of folders) {
    let stats: Stats;
    try {
      stats = lstatSync(folder);
    } catch {
      continue; // not created yet (ensureStateDir makes it) or not readable: the state folder check reports it
    }
    if (stats.isSymbolicLink()) continue; // its target's folders are in the set; the link itself is guarded by its own parent
    if (stats.uid !== runner.uid && stats.uid !== 0) {
      throw inputError(
        `parent folder ${folder} of the state folder ${dir} is owned by uid ${stats.uid}, not by root or the user running exmit (uid ${runner.uid}): refused, since its owner could swap the state folder`,
        'Put the state folder (--state-dir) below folders that only root or you own.',
      );
    }
    if ((stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0) {
      const mode = (stats.mode & 0o777).toString(8).padStart(3, '0');
      throw inputError(
        `parent folder ${folder} of the state folder ${dir} is writable by group or others (mode ${mode}) without the sticky bit: refused, since another user could swap the state folder`,
        `Run: chmod go-w "${folder}" (or chmod +t for a shared folder), or put the state folder elsewhere with --state-dir.`,
      );
    }
  }
}

/** Creates the state folder owner-only (0700) when missing, then checks it. */
export function ensureStateDir(dir: string, runner: Runner = currentRunner()): void {
  if (checkStateDir(dir, runner)) return;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw inputError(`state folder ${dir} cannot be created: ${(error as Error).message}`, 'Pass --state-dir DIR, or run elevated on a server.');
  }
  checkStateDir(dir, runner);
}

/**
 * Reads a file from the state folder after checking the folder and the file (owner, mode, a regular
 * file, not a link): null when it does not exist. The file is checked through its open descriptor,
 * so it cannot be swapped between the check and the read.
 */
export function readStateFile(dir: string, file: string, maxBytes: number, runner: Runner = currentRunner()): Buffer | null {
  if (!checkStateDir(dir, runner)) return null;
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw inputError(`state file ${file} is a symbolic link: refused`, `Remove the link and put the file itself there.`);
    throw inputError(`state file ${file} cannot be read: ${(error as Error).message}`, 'Run exmit as the user (on a server: elevated) that owns the state folder.');
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw inputError(`state file ${file} is not a regular file`, 'Remove it.');
    if (runner.platform === 'win32' && lstatSync(file).isSymbolicLink()) throw inputError(`state file ${file} is a link: refused`, 'Remove the link and put the file itself there.');
    checkOwnerAndMode(file, stats, 'file', runner);
    if (stats.size > maxBytes) throw inputError(`state file ${file} is larger than ${maxBytes} bytes`, 'It is not a file exmit wrote; remove it.');
    const buffer = Buffer.alloc(stats.size);
    let read = 0;
    while (read < buffer.length) {
      const n = readSync(fd, buffer, read, buffer.length - read, read);
      if (n === 0) break;
      read += n;
    }
    return buffer.subarray(0, read);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file atomically (a temporary file beside it, flushed, renamed over it, then the folder flushed), owner-only. */
export function writeFileAtomic(file: string, data: Buffer | string, mode = 0o600): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    unlinkSync(temp);
    throw error;
  }
  closeSync(fd);
  try {
    renameSync(temp, file);
  } catch (error) {
    unlinkSync(temp);
    throw inputError(`cannot write ${file}: ${(error as Error).message}`);
  }
  syncFolder(path.dirname(file));
}

/** Flushes a folder's entries (after a rename) so the new name survives a crash; Windows has no folder handle to flush, and NTFS journals the rename. */
export function syncFolder(dir: string, platform: NodeJS.Platform = process.platform): void {
  if (platform === 'win32') return;
  const fd = openSync(dir, constants.O_RDONLY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
