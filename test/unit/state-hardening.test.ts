// The state folder against another local user: links, writable parents, two writers at once, and on Windows elevated runs and network paths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ExmitError } from '../../src/errors.ts';
import { readConfig } from '../../src/state/config.ts';
import { ensureStateDir } from '../../src/state/secure.ts';
import { lockPath, withStateLock } from '../../src/state/lock.ts';
import { checkStatePathLocal, checkStateSecurity, stateFolderSddl, type WindowsIdentity } from '../../src/state/windows-acl.ts';
import { tempDir, writeConfig } from './trust-fixtures.ts';


function refused(pattern: RegExp) {
  return (e: unknown) => e instanceof ExmitError && e.code === 1 && pattern.test(e.message);
}

test('a state folder that is itself a symbolic link is refused', () => {
  const real = tempDir();
  writeConfig(real, { blocked: ['x'] });
  const link = path.join(tempDir(), 'state');
  symlinkSync(real, link);
  assert.throws(() => readConfig(link), refused(new RegExp(`^state folder ${link.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is a symbolic link: refused`)));
  assert.throws(() => ensureStateDir(link), refused(/is a symbolic link/));
});

test('a parent folder writable by group or others without the sticky bit is refused; with the sticky bit (as /tmp) it is fine', () => {
  const parent = path.join(tempDir(), 'shared');
  mkdirSync(parent);
  const state = path.join(parent, 'exmit');
  mkdirSync(state, { mode: 0o700 });
  writeConfig(state, { blocked: ['x'] });
  for (const mode of [0o777, 0o775, 0o757]) {
    chmodSync(parent, mode);
    assert.throws(() => readConfig(state), refused(new RegExp(`parent folder ${parent.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} of the state folder .* is writable by group or others \\(mode ${mode.toString(8)}\\) without the sticky bit`)), mode.toString(8));
    assert.throws(() => ensureStateDir(path.join(parent, 'new')), refused(/without the sticky bit/));
  }
  chmodSync(parent, 0o1777);
  assert.deepEqual(readConfig(state).blocked, ['x']);
  chmodSync(parent, 0o755);
  assert.deepEqual(readConfig(state).blocked, ['x']);
});

test('one writer at a time: a second waits, then is refused naming the lock; a lock left by a dead process is taken over', async () => {
  const dir = tempDir();
  let inside = 0;
  const order: string[] = [];
  await withStateLock(dir, async () => {
    inside++;
    assert.equal(existsSync(lockPath(dir)), true);
    await assert.rejects(withStateLock(dir, () => order.push('second'), { waitMs: 150 }), refused(/locked by another exmit \(process \d+\)/));
    order.push('first');
  });
  assert.equal(inside, 1);
  assert.deepEqual(order, ['first']);
  assert.equal(existsSync(lockPath(dir)), false, 'released');
  writeFileSync(lockPath(dir), JSON.stringify({ pid: 999_999_999 }), { mode: 0o600 });
  assert.equal(await withStateLock(dir, () => 'taken over', { isAlive: () => false }), 'taken over');
  assert.equal(existsSync(lockPath(dir)), false);
});

const ADMIN: WindowsIdentity = { sid: 'S-1-5-21-1004336348-1177238915-682003330-500', elevated: true };
const ALICE: WindowsIdentity = { sid: 'S-1-5-21-1004336348-1177238915-682003330-1104', elevated: false };

test('Windows, elevated: only Administrators and SYSTEM are trusted in the state folder, not the administrator\'s own account', () => {
  const entry = (sddl: string) => ({ path: 'C:\\ProgramData\\exmit', kind: 'folder' as const, sddl });
  const withUser = `O:BAD:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)(A;OICI;FA;;;${ADMIN.sid})`;
  assert.throws(() => checkStateSecurity(entry(withUser), 'folder', ADMIN), refused(/gives S-1-5-21-.*-500 access .*only Administrators and SYSTEM/));
  assert.throws(() => checkStateSecurity(entry(`O:${ADMIN.sid}D:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)`), 'folder', ADMIN), refused(/owned by S-1-5-21-.*-500 \(the account running exmit\), not by Administrators or SYSTEM: refused, since an elevated exmit trusts only those/));
  checkStateSecurity(entry(`O:BA${stateFolderSddl(ADMIN)}`), 'folder', ADMIN);
  // A user who is not elevated keeps their own --state-dir.
  checkStateSecurity(entry(`O:${ALICE.sid}${stateFolderSddl(ALICE)}`), 'folder', ALICE);
});

test('Windows: a network path is refused for the state folder', () => {
  for (const dir of ['\\\\fileserver\\share\\exmit', '//fileserver/share/exmit', '\\\\?\\UNC\\fileserver\\share\\exmit']) {
    assert.throws(() => checkStatePathLocal(dir), refused(/is a network path: refused/), dir);
  }
  for (const dir of ['C:\\ProgramData\\exmit', 'D:\\state', '\\\\?\\C:\\ProgramData\\exmit']) checkStatePathLocal(dir);
});
