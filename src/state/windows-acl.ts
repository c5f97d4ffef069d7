/**
 * The Windows half of the state folder's protection: what the ACL of the state folder, its files and
 * a signing key must be, and the checks run before exmit reads them. Node's fs.stat carries no ACL,
 * so the facts come from the PowerShell engine (WindowsHost, one engine per run); the judgement is
 * here, in pure functions, so it is tested on every platform.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { inputError } from '../errors.ts';
import { cachePath, configPath } from './paths.ts';
import { floorPath } from './floor.ts';
import { INHERIT_ONLY, READ_DATA_RIGHTS, SID, WRITE_RIGHTS, parseSddl, sidName, type SecurityDescriptor } from './sddl.ts';

/** Who runs exmit, as Windows sees it. */
export interface WindowsIdentity {
  /** The user's SID. */
  sid: string;
  /** The process runs elevated (Administrators is enabled in its token). */
  elevated: boolean;
}

/** What the engine reports about one path. */
export interface PathSecurity {
  path: string;
  /** missing: nothing there; link: a symbolic link or junction (never followed). */
  kind: 'missing' | 'file' | 'folder' | 'link' | 'other';
  /** `Get-Acl`'s Sddl, null when missing. */
  sddl: string | null;
}

/** What exmit asks of Windows through the engine. */
export interface WindowsHost {
  identity(): Promise<WindowsIdentity>;
  security(paths: readonly string[]): Promise<PathSecurity[]>;
  /** Creates a folder or a new file (never over an existing one) with this ACL from the first instant. */
  createSecure(path: string, kind: 'folder' | 'file', sddl: string, data?: Buffer): Promise<void>;
  /** The raw `WinHttpSettings` registry value; null when absent. */
  winHttpSettings(): Promise<Buffer | null>;
}

/**
 * The state folder's ACL: Administrators and SYSTEM, full control, inherited by what is created in
 * it, and nothing inherited from above. A user who is not elevated (a --state-dir of their own) is
 * added, or they could not read back what they wrote.
 */
export function stateFolderSddl(me: WindowsIdentity): string {
  const user = me.elevated ? '' : `(A;OICI;FA;;;${me.sid})`;
  return `D:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)${user}`;
}

/** A private key's ACL: the user who made it, and SYSTEM. */
export function privateKeySddl(me: WindowsIdentity): string {
  return `D:PAI(A;;FA;;;${me.sid})(A;;FA;;;SY)`;
}

/** Principals trusted in the state folder: Administrators and SYSTEM, and the user running exmit only when not elevated (a --state-dir of their own). */
function stateTrusted(me: WindowsIdentity): Set<string> {
  return me.elevated ? new Set([SID.administrators, SID.system]) : new Set([SID.administrators, SID.system, me.sid]);
}

/** Refuses a network path (UNC) for the state folder: its ACL and its very content are the file server's to decide. */
export function checkStatePathLocal(stateDir: string): void {
  const local = /^[\\/][\\/][?.][\\/][A-Za-z]:(?:[\\/]|$)/.test(stateDir);
  if (/^[\\/][\\/]/.test(stateDir) && !local) {
    throw inputError(`state folder ${stateDir} is a network path: refused, since the file server, not this machine's administrators, controls what is in it`, 'Use a folder on a local disk (the default is %ProgramData%\\exmit).');
  }
}

/** The icacls commands that give a state entry the ACL exmit creates it with. */
export function stateFixCommand(target: string, kind: 'folder' | 'file', remove: string | null): string {
  const inherit = kind === 'folder' ? '(OI)(CI)' : '';
  const removal = remove === null || remove.startsWith('alias:') ? '' : ` /remove:g *${remove}`;
  return `icacls "${target}" /setowner *${SID.administrators} && icacls "${target}" /inheritance:r /grant:r *${SID.administrators}:${inherit}F *${SID.system}:${inherit}F${removal}`;
}

/**
 * Refuses a state folder or file whose owner is not Administrators, SYSTEM or the user running
 * exmit, or whose ACL gives anyone else any access: a standard user could otherwise have planted
 * keys, configuration or a cached catalog.
 */
export function checkStateSecurity(entry: PathSecurity, kind: 'folder' | 'file', me: WindowsIdentity): void {
  const what = `state ${kind} ${entry.path}`;
  if (entry.kind === 'link') throw inputError(`${what} is a link: refused`, 'Remove the link and put the real folder or file there.');
  if (entry.kind !== kind) throw inputError(`${what} is not a ${kind}`, 'Remove it, or point --state-dir elsewhere.');
  const descriptor = parseSddl(entry.sddl ?? '', what);
  const trusted = stateTrusted(me);
  if (me.elevated && descriptor.owner === me.sid) {
    throw inputError(
      `${what} is owned by ${sidName(me.sid)} (the account running exmit), not by Administrators or SYSTEM: refused, since an elevated exmit trusts only those`,
      `Check its content, then run (elevated): ${stateFixCommand(entry.path, kind, null)}`,
    );
  }
  if (descriptor.owner === null || !trusted.has(descriptor.owner)) {
    throw inputError(
      `${what} is owned by ${descriptor.owner === null ? 'nobody' : sidName(descriptor.owner)}, not by Administrators, SYSTEM or you: refused, since a standard user could have planted it`,
      `Check its content, then run (elevated): ${stateFixCommand(entry.path, kind, descriptor.owner)}`,
    );
  }
  const other = firstOtherAccess(descriptor, trusted, 0xffffffff);
  if (other !== null) {
    throw inputError(
      `${what} gives ${sidName(other.sid)} access (rights 0x${other.mask.toString(16)}): refused, since only Administrators and SYSTEM may have access to it`,
      `Check its content, then run (elevated): ${stateFixCommand(entry.path, kind, other.sid)}`,
    );
  }
}

/**
 * Refuses a private key that someone other than its user, SYSTEM or Administrators may read or
 * change (the Windows form of "mode 0600").
 */
export function checkPrivateKeySecurity(entry: PathSecurity, me: WindowsIdentity): void {
  const what = `private key ${entry.path}`;
  if (entry.kind !== 'file') throw inputError(`${what} is not a file${entry.kind === 'link' ? ' (a link): refused' : ''}`, 'Check the path given to --key.');
  const descriptor = parseSddl(entry.sddl ?? '', what);
  const trusted = new Set([me.sid, SID.system, SID.administrators]);
  if (descriptor.owner === null || !trusted.has(descriptor.owner)) {
    throw inputError(`${what} is owned by ${descriptor.owner === null ? 'nobody' : sidName(descriptor.owner)}, not by you: refused`, `If it is yours, run: icacls "${entry.path}" /setowner *${me.sid}`);
  }
  const other = firstOtherAccess(descriptor, trusted, READ_DATA_RIGHTS | WRITE_RIGHTS);
  if (other !== null) {
    throw inputError(
      `${what} can be read or changed by ${sidName(other.sid)}: refused`,
      `Run: icacls "${entry.path}" /inheritance:r /grant:r *${me.sid}:F *${SID.system}:F /remove:g *${other.sid} and consider the key exposed if others could read it.`,
    );
  }
}

/**
 * The first allow entry that gives a principal outside `trusted` any of `rights` (a null DACL gives
 * everyone everything). Inherit-only entries for CREATOR OWNER/GROUP stand for whoever creates a
 * child, who needed write access to the folder already; OWNER RIGHTS is the (checked) owner.
 */
function firstOtherAccess(descriptor: SecurityDescriptor, trusted: Set<string>, rights: number): { sid: string; mask: number } | null {
  if (descriptor.dacl === null) return { sid: SID.everyone, mask: 0x1f01ff };
  for (const ace of descriptor.dacl) {
    if (!ace.allow || trusted.has(ace.sid) || (ace.mask & rights) === 0) continue;
    if (ace.sid === SID.ownerRights) continue;
    if ((ace.sid === SID.creatorOwner || ace.sid === SID.creatorGroup) && (ace.flags & INHERIT_ONLY) !== 0) continue;
    return { sid: ace.sid, mask: ace.mask };
  }
  return null;
}

/** The files exmit reads from the state folder. */
export function stateFiles(stateDir: string): string[] {
  // ledger.json: what apply, rollback and status read on a live server.
  return [configPath(stateDir), cachePath(stateDir), floorPath(stateDir), path.join(stateDir, 'ledger.json')];
}

/**
 * Before exmit reads its state folder on Windows: the folder and the files it reads are checked
 * through the engine (one request); false when the folder does not exist. On other platforms the
 * owner and mode are checked at each read (src/state/secure.ts), so this does nothing.
 */
export async function guardStateRead(stateDir: string, windows: WindowsHost | null, platform: NodeJS.Platform = process.platform): Promise<boolean> {
  if (platform !== 'win32') return true;
  if (windows === null) throw new Error('internal: the state folder is read on Windows without a WindowsHost');
  checkStatePathLocal(stateDir);
  const me = await windows.identity();
  const [folder, ...files] = await windows.security([stateDir, ...stateFiles(stateDir)]);
  if (folder === undefined || folder.kind === 'missing') return false;
  checkStateSecurity(folder, 'folder', me);
  for (const file of files) if (file.kind !== 'missing') checkStateSecurity(file, 'file', me);
  return true;
}

/**
 * Before exmit writes its state folder on Windows: checks it, or creates it with the ACL of
 * stateFolderSddl from its first instant (its parents are made as usual), then checks it again.
 */
export async function guardStateWrite(stateDir: string, windows: WindowsHost | null, platform: NodeJS.Platform = process.platform): Promise<void> {
  if (platform !== 'win32') return;
  if (windows === null) throw new Error('internal: the state folder is written on Windows without a WindowsHost');
  if (await guardStateRead(stateDir, windows, platform)) return;
  try {
    mkdirSync(path.dirname(stateDir), { recursive: true });
  } catch (error) {
    throw inputError(`state folder ${stateDir} cannot be created: ${(error as Error).message}`, 'Pass --state-dir DIR, or run elevated on a server.');
  }
  await windows.createSecure(stateDir, 'folder', stateFolderSddl(await windows.identity()));
  if (!(await guardStateRead(stateDir, windows, platform))) throw inputError(`state folder ${stateDir} was created but cannot be found`);
}
