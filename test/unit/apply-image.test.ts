// Apply and rollback on the real files of server images, without PowerShell: every bundled
// mitigation's changes spliced into applicationHost.config, services.xml and apppools.xml, then taken
// out again, all at once and one at a time, with CRLF/LF and BOM variants; the bytes must come back.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { diffLines } from 'diff';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import { detectServer } from '../../src/exchange/detect.ts';
import type { ServerFacts, ServiceFact, AppPoolFact } from '../../src/facts.ts';
import type { AuditEntry } from '../../src/audit/plan.ts';
import { planChanges, type HeldChange } from '../../src/apply/changes.ts';
import type { Selected } from '../../src/apply/select.ts';
import { imageApplyWrites, imageRollbackWrites, type ImageFile, type ImageFileId } from '../../src/apply/image.ts';
import { emptyLedger, ledgerAfterApply, ledgerAfterRollback, type Ledger } from '../../src/apply/ledger.ts';
import { globalModuleOrigin, parseApphost, ruleNamesIn } from '../../src/apply/apphost-edit.ts';
import { decodeText, encodeText, sha256Of } from '../../src/text/encoding.ts';
import { readGlobalModules } from '../../src/iis/sites.ts';
import { parseConfigXml } from '../../src/iis/config-xml.ts';
import { ROOT } from '../support/cli.ts';
import { readAppPoolState, readServiceState, setServiceState } from '../../src/apply/clixml-edit.ts';

const catalog = loadBundledCatalog();
const APPHOST = 'C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config';

function imageFiles(dir: string, transform: (bytes: Uint8Array) => Uint8Array = (b) => b): Record<ImageFileId, ImageFile> {
  // Windows paths are case-insensitive: find each segment as the image spells it.
  const resolve = (rel: string): string | null => {
    let at = dir;
    for (const seg of rel.split('/')) {
      const hit = existsSync(at) ? readdirSync(at).find((e) => e.toLowerCase() === seg.toLowerCase()) : undefined;
      if (hit === undefined) return null;
      at = path.join(at, hit);
    }
    return at;
  };
  const read = (rel: string): Uint8Array | null => {
    const full = resolve(rel);
    return full === null ? null : transform(new Uint8Array(readFileSync(full)));
  };
  return {
    apphost: { id: 'apphost', path: APPHOST, label: 'applicationHost.config', bytes: read('fs/C/Windows/System32/inetsrv/config/applicationHost.config') },
    services: { id: 'services', path: 'services.xml', label: 'services.xml', bytes: read('services.xml') },
    apppools: { id: 'apppools', path: 'apppools.xml', label: 'apppools.xml', bytes: read('apppools.xml') },
  };
}

/** Facts enough for planning: the services and pools every mitigation names, running. */
function factsFor(product: '2013' | '2016' | '2019'): ServerFacts {
  const build = { '2013': [15, 0, 1497, 2], '2016': [15, 1, 2375, 7], '2019': [15, 2, 1118, 7] }[product];
  const svc = (name: string): ServiceFact => ({ name, displayName: name, status: 'Running', startType: 'Automatic' });
  const pool = (name: string): AppPoolFact => ({ name, state: 'Started', autoStart: true, startMode: 'OnDemand' });
  return {
    target: { kind: 'image', path: '/img', computerName: null },
    registry: [{ name: 'Setup', values: { MsiInstallPath: 'C:\\Program Files\\Microsoft\\Exchange Server\\V15\\', MsiProductMajor: build[0] ?? 15, MsiProductMinor: build[1] ?? 0, MsiBuildMajor: build[2] ?? 0, MsiBuildMinor: build[3] ?? 0 } }, { name: 'MailboxRole', values: {} }, { name: 'ClientAccessRole', values: {} }],
    exsetup: null,
    services: ['MSExchangeHM', 'MSExchangeHMRecovery', 'MSExchangeUM', 'MSExchangeUMCR'].map(svc),
    cachtokn: null,
    os: null,
    environment: null,
    appPools: ['MSExchangeECPAppPool', 'MSExchangeOABAppPool'].map(pool),
    applicationHost: null,
    missing: [],
  };
}

/** Every mitigation selected as needed, as `apply --needed --allow-breaking` would on a vulnerable server. */
function everything(): Selected[] {
  return catalog.mitigations.map((m) => {
    const entry: AuditEntry = { id: m.id, title: m.title, cves: m.cves, status: 'needed', reason: 'test', stillApplied: false, breaks: m.breaks, sideEffects: m.sideEffects, fixedBy: null, bypasses: [] };
    return { mitigation: m, entry, skip: null, already: false };
  });
}

function plan(files: Record<ImageFileId, ImageFile>, facts: ServerFacts, selected: Selected[]) {
  const text = decodeText(files.apphost.bytes ?? new Uint8Array()).text;
  const doc = parseApphost(text, 'applicationHost.config');
  const modules = new Map(readGlobalModules(parseConfigXml(text, 'applicationHost.config')).map((g) => [g.name.toLowerCase(), { image: g.image, ...(globalModuleOrigin(doc, g.name) ?? { xml: null, after: null }) }]));
  return planChanges(selected, { server: detectServer(facts), facts, existingNames: ruleNamesIn(doc), globalModules: modules });
}

/** The files of the image after the writes. */
function withWrites(files: Record<ImageFileId, ImageFile>, writes: ReturnType<typeof imageApplyWrites>): Record<ImageFileId, ImageFile> {
  const next = { ...files };
  for (const w of writes) next[w.file.id] = { ...w.file, bytes: w.afterBytes };
  return next;
}

function ledgerFiles(files: Record<ImageFileId, ImageFile>, writes: ReturnType<typeof imageApplyWrites>) {
  const out: Record<string, { original: string | null; written: string | null }> = {};
  for (const w of writes) out[w.file.id] = { original: files[w.file.id].bytes === null ? null : sha256Of(files[w.file.id].bytes ?? new Uint8Array()), written: w.step.after?.sha256 ?? null, ...(w.created !== undefined ? { created: w.created } : {}) };
  return out;
}

function originalsOf(files: Record<ImageFileId, ImageFile>): Map<string, Uint8Array> {
  const m = new Map<string, Uint8Array>();
  for (const f of Object.values(files)) if (f.bytes !== null) m.set(sha256Of(f.bytes), f.bytes);
  return m;
}

function stateReader(files: Record<ImageFileId, ImageFile>) {
  const text = (id: ImageFileId): string => (files[id].bytes === null ? '' : decodeText(files[id].bytes ?? new Uint8Array()).text);
  return {
    service: (name: string) => readServiceState(text('services'), 'services.xml', name),
    appPool: (name: string) => readAppPoolState(text('apppools'), 'apppools.xml', name),
  };
}

const IMAGES: { dir: string; product: '2013' | '2016' | '2019' }[] = [
  { dir: path.join(ROOT, 'examples', 'e19-cu12-oct22su'), product: '2019' },
  { dir: path.join(ROOT, 'test', 'fixtures', 'images', 'e16-cu22-nov22su'), product: '2016' },
  { dir: path.join(ROOT, 'test', 'fixtures', 'images', 'e15-cu23-mar23su'), product: '2013' },
  { dir: path.join(ROOT, 'test', 'fixtures', 'images', 'e19-utf8'), product: '2019' },
];

const toLf = (b: Uint8Array): Uint8Array => {
  const d = decodeText(b);
  return encodeText(d.text.replace(/\r\n/g, '\n'), { ...d, newline: '\n' });
};
const toUtf16 = (b: Uint8Array): Uint8Array => {
  const d = decodeText(b);
  return encodeText(d.text, { ...d, encoding: 'utf-16le', bom: true });
};
const noBom = (b: Uint8Array): Uint8Array => {
  const d = decodeText(b);
  return encodeText(d.text, { ...d, encoding: 'utf-8', bom: false });
};

describe('apply and rollback on image files', () => {
  for (const image of IMAGES) {
    for (const [variant, transform] of [['as captured', (b: Uint8Array) => b], ['LF', toLf], ['UTF-16LE with BOM', toUtf16], ['UTF-8 without BOM', noBom]] as const) {
      it(`${path.basename(image.dir)} (${variant}): applying every mitigation changes only what it must, and rolling back all gives every byte back`, () => {
        const files = imageFiles(image.dir, transform);
        const facts = factsFor(image.product);
        const changes = plan(files, facts, everything());
        const writes = imageApplyWrites(files, changes.changes, facts.appPools ?? []);
        assert.ok(writes.some((w) => w.file.id === 'apphost'), 'applicationHost.config changed');
        const after = withWrites(files, writes);
        // The new applicationHost.config parses, keeps its encoding and newline style, and names every exmit rule once.
        const afterText = decodeText(after.apphost.bytes ?? new Uint8Array());
        const beforeText = decodeText(files.apphost.bytes ?? new Uint8Array());
        assert.equal(afterText.encoding, beforeText.encoding);
        assert.equal(afterText.bom, beforeText.bom);
        assert.equal(afterText.newline, beforeText.newline);
        const names = ruleNamesIn(parseApphost(afterText.text, 'applicationHost.config'));
        for (const c of changes.changes) if (c.change.kind === 'inbound-rule') assert.ok(names.has(c.change.name.toLowerCase()), `${c.change.name} written`);
        // Nothing of the original goes but the global module's entry.
        const removed = diffLines(beforeText.text, afterText.text).filter((part) => part.removed).map((part) => part.value.trim());
        const module = changes.changes.find((c) => c.change.kind === 'remove-global-module');
        assert.deepEqual(removed, module === undefined ? [] : [module.change.kind === 'remove-global-module' ? module.change.xml : '']);

        const ledger = ledgerAfterApply(emptyLedger(), { runId: 'r1', at: '2026-12-01T00:00:00Z', catalogSerial: 1 }, changes.changes, changes.byMitigation, ledgerFiles(files, writes));
        const all = Object.keys(ledger.mitigations);
        const { released, ledger: empty } = ledgerAfterRollback(ledger, all, 'r2', {});
        const back = imageRollbackWrites(after, ledger, released, originalsOf(files), stateReader(after));
        assert.deepEqual(back.conflicts, []);
        const restored = withWrites(after, back.writes);
        for (const id of ['apphost', 'services', 'apppools'] as const) {
          assert.equal(restored[id].bytes === null ? null : sha256Of(restored[id].bytes ?? new Uint8Array()), files[id].bytes === null ? null : sha256Of(files[id].bytes ?? new Uint8Array()), `${id} byte-identical after rollback`);
        }
        assert.deepEqual(Object.keys(empty.mitigations), []);
      });
    }

    it(`${path.basename(image.dir)}: rolling back one mitigation at a time, with someone else's comment added after apply, removes only exmit's own elements`, () => {
      const files = imageFiles(image.dir);
      const facts = factsFor(image.product);
      const changes = plan(files, facts, everything());
      const writes = imageApplyWrites(files, changes.changes, facts.appPools ?? []);
      let current = withWrites(files, writes);
      let ledger: Ledger = ledgerAfterApply(emptyLedger(), { runId: 'r1', at: 'now', catalogSerial: 1 }, changes.changes, changes.byMitigation, ledgerFiles(files, writes));
      // Someone adds a comment at the end of applicationHost.config after exmit wrote it.
      const d = decodeText(current.apphost.bytes ?? new Uint8Array());
      const comment = `${d.newline === '\n' ? '\n' : '\r\n'}<!-- added by an admin -->`;
      current = { ...current, apphost: { ...current.apphost, bytes: encodeText(d.text + comment, d) } };
      for (const id of Object.keys(ledger.mitigations)) {
        const { released, ledger: next } = ledgerAfterRollback(ledger, [id], `r-${id}`, {});
        const back = imageRollbackWrites(current, ledger, released, originalsOf(files), stateReader(current));
        assert.deepEqual(back.conflicts, [], id);
        current = withWrites(current, back.writes);
        ledger = next;
        for (const w of back.writes) if (w.step.after !== null && ledger.files[w.file.id] !== undefined) ledger.files[w.file.id] = { original: ledger.files[w.file.id]?.original ?? null, written: w.step.after.sha256, ...(w.created !== undefined ? { created: w.created } : {}), ...(w.foreign === true ? { foreign: true } : {}) };
      }
      const origText = decodeText(files.apphost.bytes ?? new Uint8Array()).text;
      const finalText = decodeText(current.apphost.bytes ?? new Uint8Array()).text;
      const hadModule = changes.changes.some((c) => c.change.kind === 'remove-global-module');
      assert.equal(finalText, origText + comment, `applicationHost.config is the original plus the admin's comment${hadModule ? ' (the module entry back in its place)' : ''}`);
      for (const id of ['services', 'apppools'] as const) {
        if (files[id].bytes !== null) assert.equal(sha256Of(current[id].bytes ?? new Uint8Array()), sha256Of(files[id].bytes ?? new Uint8Array()), `${id} byte-identical`);
      }
    });
  }

  it('a service someone started again after exmit stopped it is a conflict, left as it is', () => {
    const image = IMAGES[1];
    assert.ok(image !== undefined);
    const files = imageFiles(image.dir);
    const facts = factsFor('2016');
    const selected = everything().filter((s) => s.mitigation.id === 'proxylogon-ecp-apppool');
    const changes = plan(files, facts, selected);
    const writes = imageApplyWrites(files, changes.changes, facts.appPools ?? []);
    let after = withWrites(files, writes);
    const ledger = ledgerAfterApply(emptyLedger(), { runId: 'r1', at: 'now', catalogSerial: 1 }, changes.changes, changes.byMitigation, ledgerFiles(files, writes));
    // An admin starts Managed Availability again: the image's services.xml says so.
    const d = decodeText(after.services.bytes ?? new Uint8Array());
    after = { ...after, services: { ...after.services, bytes: encodeText(setServiceState(d.text, 'services.xml', 'MSExchangeHM', { status: 'Running', startType: 'Automatic' }), d) } };
    const { released } = ledgerAfterRollback(ledger, ['proxylogon-ecp-apppool'], 'r2', {});
    const back = imageRollbackWrites(after, ledger, released, originalsOf(files), stateReader(after));
    assert.equal(back.conflicts.length, 1);
    assert.match(back.conflicts[0]?.detail ?? '', /MSExchangeHM is Running, Automatic now/);
  });

  it('two mitigations that both stop Managed Availability share it: rolling back one keeps it stopped', () => {
    const image = IMAGES[1];
    assert.ok(image !== undefined);
    const files = imageFiles(image.dir);
    const facts = factsFor('2016');
    const selected = everything().filter((s) => s.mitigation.id === 'proxylogon-ecp-apppool' || s.mitigation.id === 'proxylogon-oab-apppool');
    const changes = plan(files, facts, selected);
    const hm = changes.changes.find((c) => c.change.key === 'service:msexchangehm');
    assert.deepEqual(hm?.holders, ['proxylogon-ecp-apppool', 'proxylogon-oab-apppool']);
    assert.equal(changes.changes[0]?.change.kind, 'service', 'Managed Availability is stopped first');
    const ledger = ledgerAfterApply(emptyLedger(), { runId: 'r1', at: 'now', catalogSerial: 1 }, changes.changes, changes.byMitigation, {});
    const { released } = ledgerAfterRollback(ledger, ['proxylogon-ecp-apppool'], 'r2', {});
    assert.deepEqual(released.map((r) => r.key), ['app-pool:msexchangeecpapppool']);
  });
});

/** Keeps HeldChange imported for readers of this file. */
export type { HeldChange };
