// The Windows ACL of the state folder and of signing keys: SDDL as Get-Acl gives it, judged here.
// The descriptors below are written from Microsoft's documented defaults (C:\ProgramData grants
// BUILTIN\Users read and execute, and lets them create folders; CREATOR OWNER gets full control of
// what it creates) and from what exmit itself sets; they are not captures from a server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ExmitError } from '../../src/errors.ts';
import { SID, parseSddl } from '../../src/state/sddl.ts';
import {
  checkPrivateKeySecurity,
  checkStateSecurity,
  guardStateRead,
  guardStateWrite,
  privateKeySddl,
  stateFolderSddl,
  type PathSecurity,
  type WindowsHost,
  type WindowsIdentity,
} from '../../src/state/windows-acl.ts';
import { privateKeyWriterFor } from '../../src/commands/catalog-keygen.ts';
import { checkPrivateKeyAccess } from '../../src/commands/catalog-sign.ts';
import { tempDir } from './trust-fixtures.ts';

const ADMIN: WindowsIdentity = { sid: 'S-1-5-21-1004336348-1177238915-682003330-500', elevated: true };
const ALICE: WindowsIdentity = { sid: 'S-1-5-21-1004336348-1177238915-682003330-1104', elevated: false };
const MALLORY = 'S-1-5-21-1004336348-1177238915-682003330-1105';

/** The folder exmit creates, with the owner an elevated administrator's new folder gets. */
const EXMIT_FOLDER = `O:BA${stateFolderSddl(ADMIN)}`;
/** A folder made under %ProgramData% by an administrator with mkdir: it inherits ProgramData's ACL. */
const MKDIR_BY_ADMIN = 'O:BAG:SYD:AI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIIOID;GA;;;CO)(A;OICIID;0x1200a9;;;BU)(A;CIID;0x116;;;BU)';
/** The same folder planted by a standard user before exmit ever ran: the user owns it and CREATOR OWNER gave them full control. */
const PLANTED = `O:${MALLORY}G:${MALLORY}D:AI(A;OICIID;FA;;;${MALLORY})(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIIOID;GA;;;CO)(A;OICIID;0x1200a9;;;BU)`;

function entry(sddl: string, kind: PathSecurity['kind'] = 'folder', file = 'C:\\ProgramData\\exmit'): PathSecurity {
  return { path: file, kind, sddl };
}

function refused(pattern: RegExp, hint?: RegExp) {
  return (e: unknown) => {
    assert.ok(e instanceof ExmitError, String(e));
    assert.equal(e.code, 1);
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\n|at .*\(/);
    if (hint !== undefined) assert.match(e.hint ?? '', hint);
    return true;
  };
}

test('SDDL: owner, protected flag, entries, aliases, rights codes and hex masks', () => {
  const d = parseSddl(EXMIT_FOLDER, 'x');
  assert.equal(d.owner, SID.administrators);
  assert.equal(d.protected, true);
  assert.deepEqual(d.dacl, [
    { allow: true, sid: SID.administrators, mask: 0x1f01ff, flags: 0x3 },
    { allow: true, sid: SID.system, mask: 0x1f01ff, flags: 0x3 },
  ]);
  const inherited = parseSddl(MKDIR_BY_ADMIN, 'x');
  assert.equal(inherited.protected, false);
  assert.deepEqual(inherited.dacl?.map((a) => [a.sid, a.mask, a.flags]), [
    [SID.system, 0x1f01ff, 0x13],
    [SID.administrators, 0x1f01ff, 0x13],
    [SID.creatorOwner, 0x10000000, 0x1b],
    [SID.users, 0x1200a9, 0x13],
    [SID.users, 0x116, 0x12],
  ]);
  assert.equal(parseSddl('D:(A;;CCDCLCSWRPWPDTLOCRSDRCWDWO;;;WD)', 'x').dacl?.[0]?.mask, 0xf01ff);
  assert.equal(parseSddl('D:(A;;GA;;;WD)', 'x').dacl?.[0]?.mask, 0x10000000);
  assert.equal(parseSddl('D:(A;;268435456;;;WD)', 'x').dacl?.[0]?.mask, 0x10000000);
  assert.equal(parseSddl('D:(A;;FA;;;DA)', 'x').dacl?.[0]?.sid, 'alias:DA');
});

test('SDDL: a SACL is skipped, a conditional entry with nested parentheses is read, deny entries are kept apart', () => {
  const d = parseSddl(`O:BAG:BAD:P(A;;FA;;;BA)(D;;FA;;;WD)(XA;;FR;;;AU;(Member_of {SID(BA)}))S:AI(AU;SA;FA;;;WD)`, 'x');
  assert.deepEqual(d.dacl?.map((a) => [a.allow, a.sid]), [
    [true, SID.administrators],
    [false, SID.everyone],
    [true, SID.authenticatedUsers],
  ]);
});

test('SDDL: no DACL, or NO_ACCESS_CONTROL, is a null DACL', () => {
  assert.equal(parseSddl('O:BAG:BA', 'x').dacl, null);
  assert.equal(parseSddl('O:BAD:NO_ACCESS_CONTROL', 'x').dacl, null);
});

test('SDDL that cannot be read is one clear line naming the file, never a guess', () => {
  for (const bad of ['O:', 'D:(A;;FA;;;BA', 'D:(Q;;FA;;;BA)', 'D:(A;;ZZ;;;BA)', 'D:(A;QQ;FA;;;BA)', 'D:(A;;FA;;;nobody)', 'D:(A;;FA)', 'X:BA', 'D:P(A;;FA;;;BA)D:(A;;FA;;;WD)']) {
    assert.throws(() => parseSddl(bad, 'state folder C:\\ProgramData\\exmit'), refused(/^state folder C:\\ProgramData\\exmit: security descriptor .* cannot be read: /), bad);
  }
});

test('the state folder exmit creates passes, for an elevated administrator and for a user with a --state-dir of their own', () => {
  checkStateSecurity(entry(EXMIT_FOLDER), 'folder', ADMIN);
  const own = `O:${ALICE.sid}${stateFolderSddl(ALICE)}`;
  assert.match(own, new RegExp(`\\(A;OICI;FA;;;${ALICE.sid}\\)`));
  checkStateSecurity(entry(own), 'folder', ALICE);
  // The same folder is refused to another user: Alice owns it.
  assert.throws(() => checkStateSecurity(entry(own), 'folder', { sid: MALLORY, elevated: false }), refused(/owned by S-1-5-21-.*-1104, not by Administrators, SYSTEM or you/));
});

test('a folder planted by a standard user is refused, naming the owner and the icacls fix', () => {
  assert.throws(
    () => checkStateSecurity(entry(PLANTED), 'folder', ADMIN),
    refused(/^state folder C:\\ProgramData\\exmit is owned by S-1-5-21-.*-1105, not by Administrators, SYSTEM or you: refused, since a standard user could have planted it$/, /icacls "C:\\ProgramData\\exmit" \/setowner \*S-1-5-32-544 .*\/inheritance:r .*\*S-1-5-18:\(OI\)\(CI\)F \/remove:g \*S-1-5-21-.*-1105/),
  );
});

test('a folder that inherits ProgramData\'s ACL is refused: BUILTIN\\Users has access', () => {
  assert.throws(() => checkStateSecurity(entry(MKDIR_BY_ADMIN), 'folder', ADMIN), refused(/gives BUILTIN\\Users \(S-1-5-32-545\) access \(rights 0x1200a9\)/, /\/remove:g \*S-1-5-32-545/));
});

test('any other principal with any right is refused; deny entries and inherit-only CREATOR OWNER are not', () => {
  const base = 'O:BAD:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)';
  checkStateSecurity(entry(`${base}(D;OICI;FA;;;WD)(A;OICIIO;GA;;;CO)(A;;FA;;;OW)`), 'folder', ADMIN);
  for (const [extra, who] of [
    ['(A;;0x100000;;;WD)', /Everyone/],
    ['(A;OICIIO;FW;;;BU)', /BUILTIN\\Users/],
    ['(A;;FA;;;CO)', /CREATOR OWNER/],
    ['(A;;FR;;;DA)', /alias:DA/],
    [`(A;;FA;;;${MALLORY})`, /-1105/],
  ] as const) {
    assert.throws(() => checkStateSecurity(entry(base + extra), 'folder', ADMIN), refused(who), extra);
  }
  assert.throws(() => checkStateSecurity(entry('O:BAD:NO_ACCESS_CONTROL'), 'folder', ADMIN), refused(/gives Everyone/));
});

test('state files: a link or the wrong kind of entry is refused', () => {
  assert.throws(() => checkStateSecurity({ path: 'C:\\ProgramData\\exmit\\config.json', kind: 'link', sddl: null }, 'file', ADMIN), refused(/^state file C:\\ProgramData\\exmit\\config.json is a link: refused$/));
  assert.throws(() => checkStateSecurity(entry(EXMIT_FOLDER, 'folder', 'C:\\ProgramData\\exmit\\config.json'), 'file', ADMIN), refused(/is not a file/));
});

test('a private key: what keygen sets passes; readable by others or owned by another user is refused', () => {
  const made = `O:${ALICE.sid}${privateKeySddl(ALICE)}`;
  checkPrivateKeySecurity(entry(made, 'file', 'D:\\keys\\feed.key'), ALICE);
  // An administrators' grant is accepted (root may read keys on POSIX too), and so is a right that reads no data.
  checkPrivateKeySecurity(entry(`${made}(A;;FA;;;BA)(A;;0x120080;;;BU)`, 'file', 'D:\\keys\\feed.key'), ALICE);
  assert.throws(() => checkPrivateKeySecurity(entry(`${made}(A;;0x1200a9;;;BU)`, 'file', 'D:\\keys\\feed.key'), ALICE), refused(/^private key D:\\keys\\feed.key can be read or changed by BUILTIN\\Users/, /consider the key exposed/));
  assert.throws(() => checkPrivateKeySecurity(entry(`O:${MALLORY}${privateKeySddl(ALICE)}`, 'file', 'D:\\keys\\feed.key'), ALICE), refused(/owned by S-1-5-21-.*-1105, not by you/));
  assert.throws(() => checkPrivateKeySecurity({ path: 'D:\\keys\\feed.key', kind: 'link', sddl: null }, ALICE), refused(/not a file \(a link\)/));
});

/** A WindowsHost over a map of paths, recording what was asked. */
function fakeHost(me: WindowsIdentity, entries: Record<string, { kind: PathSecurity['kind']; sddl: string }>): WindowsHost & { asked: string[][]; created: { path: string; kind: string; sddl: string; data?: string }[] } {
  const asked: string[][] = [];
  const created: { path: string; kind: string; sddl: string; data?: string }[] = [];
  return {
    asked,
    created,
    identity: async () => me,
    security: async (paths) => {
      asked.push([...paths]);
      return paths.map((p) => ({ path: p, kind: entries[p]?.kind ?? 'missing', sddl: entries[p]?.sddl ?? null }));
    },
    createSecure: async (p, kind, sddl, data) => {
      created.push({ path: p, kind, sddl, ...(data === undefined ? {} : { data: data.toString('utf8') }) });
      // What Windows does: the object exists with that ACL, owned by its creator.
      entries[p] = { kind: kind === 'folder' ? 'folder' : 'file', sddl: `O:${me.elevated ? 'BA' : me.sid}${sddl}` };
    },
    winHttpSettings: async () => null,
  };
}

test('reading the state folder on Windows: one engine request for the folder and its files; missing is fine; a bad file is refused', async () => {
  const dir = path.join(tempDir(), 'exmit');
  const config = path.join(dir, 'config.json');
  const cache = path.join(dir, 'catalog-cache.json');
  const floor = path.join(dir, 'floor.json');
  const ledger = path.join(dir, 'ledger.json');
  const host = fakeHost(ADMIN, {});
  assert.equal(await guardStateRead(dir, host, 'win32'), false);
  assert.deepEqual(host.asked, [[dir, config, cache, floor, ledger]]);
  const good = fakeHost(ADMIN, { [dir]: { kind: 'folder', sddl: EXMIT_FOLDER }, [config]: { kind: 'file', sddl: 'O:BAD:AI(A;ID;FA;;;BA)(A;ID;FA;;;SY)' } });
  assert.equal(await guardStateRead(dir, good, 'win32'), true);
  const badCache = fakeHost(ADMIN, { [dir]: { kind: 'folder', sddl: EXMIT_FOLDER }, [cache]: { kind: 'file', sddl: `O:BAD:AI(A;ID;FA;;;BA)(A;;FW;;;${MALLORY})` } });
  await assert.rejects(guardStateRead(dir, badCache, 'win32'), refused(new RegExp(`^state file ${cache.replace(/[.\\/]/g, '\\$&')} gives S-1-5-21-.*-1105 access`)));
  // Elsewhere the owner and mode are checked at each read: the host is not asked.
  const unused = fakeHost(ADMIN, {});
  assert.equal(await guardStateRead(dir, unused, 'linux'), true);
  assert.deepEqual(unused.asked, []);
});

test('writing the state folder on Windows: a missing folder is created with the ACL from its first instant, then checked', async () => {
  const dir = path.join(tempDir(), 'programdata', 'exmit');
  const host = fakeHost(ADMIN, {});
  await guardStateWrite(dir, host, 'win32');
  assert.deepEqual(host.created, [{ path: dir, kind: 'folder', sddl: 'D:PAI(A;OICI;FA;;;BA)(A;OICI;FA;;;SY)' }]);
  assert.equal(existsSync(path.dirname(dir)), true, 'the parents are made');
  assert.equal(host.asked.length, 2, 'checked before and after');
  // A user's own --state-dir gets the user as well.
  const own = fakeHost(ALICE, {});
  await guardStateWrite(dir, own, 'win32');
  assert.match(own.created[0]?.sddl ?? '', new RegExp(`\\(A;OICI;FA;;;${ALICE.sid}\\)$`));
  // A planted folder is refused, not repaired.
  const planted = fakeHost(ADMIN, { [dir]: { kind: 'folder', sddl: PLANTED } });
  await assert.rejects(guardStateWrite(dir, planted, 'win32'), refused(/could have planted it/));
  assert.deepEqual(planted.created, []);
});

test('keygen on Windows writes the private key through the engine with the user-only ACL, never over a file', async () => {
  const host = fakeHost(ALICE, { 'D:\\keys\\old.key': { kind: 'file', sddl: 'O:BAD:P(A;;FA;;;BA)' } });
  const write = privateKeyWriterFor(host);
  await write('D:\\keys\\feed.key', '-----BEGIN PRIVATE KEY-----\n');
  assert.deepEqual(host.created, [{ path: 'D:\\keys\\feed.key', kind: 'file', sddl: `D:PAI(A;;FA;;;${ALICE.sid})(A;;FA;;;SY)`, data: '-----BEGIN PRIVATE KEY-----\n' }]);
  await assert.rejects(write('D:\\keys\\old.key', 'x'), refused(/already exists: refused to overwrite a key/));
  // sign then accepts that key, and refuses one others can read.
  await checkPrivateKeyAccess('D:\\keys\\feed.key', host);
  const shared = fakeHost(ALICE, { 'D:\\keys\\feed.key': { kind: 'file', sddl: `O:${ALICE.sid}D:AI(A;ID;FA;;;${ALICE.sid})(A;ID;0x1200a9;;;AU)` } });
  await assert.rejects(checkPrivateKeyAccess('D:\\keys\\feed.key', shared), refused(/can be read or changed by NT AUTHORITY\\Authenticated Users/));
  // Off Windows there is no host and nothing to ask.
  await checkPrivateKeyAccess('D:\\keys\\feed.key', null);
});
