import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ExmitError } from '../../src/errors.ts';
import { sha256Hex } from '../../src/state/cache.ts';
import { checkBeforeSigning, verifyCatalog, type PreviousCatalog } from '../../src/trust/verify.ts';
import { makeCatalog, makeKey } from './trust-fixtures.ts';

const key = makeKey();
const now = new Date('2026-07-15T12:00:00Z');

function verify(bytes: Buffer, extra: { previous?: PreviousCatalog | null; allowExpired?: boolean; allowUnsigned?: boolean; version?: string; now?: Date; sig?: string | null } = {}) {
  return verifyCatalog({
    bytes,
    signatureText: extra.sig === undefined ? key.sign(bytes) : extra.sig,
    what: 'feed',
    sigWhat: 'feed.sig',
    keys: [key.trusted],
    now: extra.now ?? now,
    allowExpired: extra.allowExpired ?? false,
    allowUnsigned: extra.allowUnsigned ?? false,
    previous: extra.previous ?? null,
    ...(extra.version === undefined ? {} : { version: extra.version }),
  });
}

const cached = makeCatalog({ serial: 2026070105 });
const previous: PreviousCatalog = { serial: 2026070105, sha256: sha256Hex(cached), label: 'the cached catalog' };

test('a replayed older serial is refused, whichever trusted key signed it', () => {
  const older = makeCatalog({ serial: 2026070104 });
  assert.throws(() => verify(older, { previous }), (e: unknown) => e instanceof ExmitError && /serial 2026070104 is older than the cached catalog's \(2026070105\)/.test(e.message));
  const second = makeKey('second');
  assert.throws(
    () => verifyCatalog({ bytes: older, signatureText: second.sign(older), what: 'feed', sigWhat: 'feed.sig', keys: [key.trusted, second.trusted], now, allowExpired: false, allowUnsigned: false, previous }),
    /older than/,
  );
});

test('the same serial passes only with the same bytes', () => {
  assert.equal(verify(cached, { previous }).sameAsPrevious, true);
  const other = makeCatalog({ serial: 2026070105, title: 'Changed' });
  assert.throws(() => verify(other, { previous }), /same as the cached catalog's but the content differs/);
  assert.equal(verify(makeCatalog({ serial: 2026070106 }), { previous }).sameAsPrevious, false);
});

test('an expired catalog is refused unless --allow-expired; the expiry day itself still counts', () => {
  const bytes = makeCatalog({ expires: '2026-07-14' });
  assert.throws(() => verify(bytes), /expired on 2026-07-14/);
  assert.equal(verify(bytes, { allowExpired: true }).catalog.expires, '2026-07-14');
  assert.equal(verify(bytes, { now: new Date('2026-07-14T23:59:59Z') }).catalog.serial, 2026070101);
  assert.throws(() => verify(bytes, { now: new Date('2026-07-15T00:00:00Z') }), /expired/);
});

test('a catalog that requires a newer exmit is refused with the range and this version', () => {
  const bytes = makeCatalog({ requires: '>=99.0.0' });
  assert.throws(() => verify(bytes), /requires exmit >=99\.0\.0, and this is exmit \d/);
  assert.throws(() => verify(makeCatalog({ requires: '^0.1.0' }), { version: '0.2.0' }), /requires exmit \^0\.1\.0, and this is exmit 0\.2\.0/);
  assert.equal(verify(makeCatalog({ requires: '^0.1.0' }), { version: '0.1.7' }).catalog.requires, '^0.1.0');
});

test('a validly signed catalog with an action outside the vocabulary is rejected by the parser', () => {
  for (const action of ['<service name="Spooler"/>', '<registry key="HKLM\\SOFTWARE" value="1"/>', '<app-pool name="DefaultAppPool"/>']) {
    const bytes = makeCatalog({ action });
    assert.throws(() => verify(bytes), (e: unknown) => e instanceof ExmitError && /line \d+/.test(e.message) && /(vocabulary|unknown element)/.test(e.message), action);
  }
});

test('unsigned: refused, unless allowUnsigned (which still parses and checks the version)', () => {
  const bytes = makeCatalog();
  assert.throws(() => verify(bytes, { sig: null }), /no signature/);
  assert.equal(verify(bytes, { sig: null, allowUnsigned: true }).key, null);
  assert.throws(() => verify(makeCatalog({ action: '<service name="Spooler"/>' }), { sig: null, allowUnsigned: true }), /vocabulary/);
});

test('bytes that are not UTF-8 are refused after the signature check', () => {
  const bytes = Buffer.concat([makeCatalog(), Buffer.from([0xff, 0xfe])]);
  assert.throws(() => verify(bytes), /not UTF-8/);
});

test('sign checks what verify checks first: a catalog whose requires excludes this exmit is not signed', () => {
  assert.throws(() => checkBeforeSigning(makeCatalog({ requires: '>=99.0.0' }), 'c.xml'), (e: unknown) => e instanceof ExmitError && e.code === 1 && /^c\.xml: requires exmit >=99\.0\.0, and this is exmit \d/.test(e.message));
  assert.throws(() => checkBeforeSigning(makeCatalog({ requires: '^0.1.0' }), 'c.xml', '0.2.0'), /requires exmit \^0\.1\.0, and this is exmit 0\.2\.0/);
  assert.throws(() => checkBeforeSigning(makeCatalog({ action: '<remove-global-module name="RewriteModule"/>' }), 'c.xml'), /outside the vocabulary/);
  assert.equal(checkBeforeSigning(makeCatalog(), 'c.xml').serial, 2026070101);
});
