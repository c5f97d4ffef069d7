// The pure parts of apply, by tables: which mitigations a run selects, which changes they need in
// which order, unique rule names, the steps a live server gets, and reading ledgers and journals that
// may come from a compromised server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import type { AuditEntry, Status } from '../../src/audit/plan.ts';
import { selectForApply, resolveIds, nearestId } from '../../src/apply/select.ts';
import { planChanges, uniqueName, type HeldChange } from '../../src/apply/changes.ts';
import { liveApplySteps, liveRestoreSteps } from '../../src/apply/live-steps.ts';
import { emptyLedger, ledgerAfterApply, ledgerAfterRollback, parseLedger, serializeLedger } from '../../src/apply/ledger.ts';
import { parseJournal, stepsToRepair, unfinishedRuns } from '../../src/apply/journal.ts';
import { detectServer } from '../../src/exchange/detect.ts';
import type { ServerFacts } from '../../src/facts.ts';
import { ExmitError } from '../../src/errors.ts';
import { liveRepairStep } from '../../src/apply/run.ts';

const catalog = loadBundledCatalog();

function entries(statuses: Record<string, Status>): AuditEntry[] {
  return catalog.mitigations.map((m) => ({ id: m.id, title: m.title, cves: m.cves, status: statuses[m.id] ?? 'fixed', reason: `reason of ${m.id}`, stillApplied: false, breaks: m.breaks, sideEffects: m.sideEffects, fixedBy: null, bypasses: [] }));
}

function facts2016(): ServerFacts {
  return {
    target: { kind: 'image', path: '/img', computerName: null },
    registry: [{ name: 'Setup', values: { MsiInstallPath: 'C:\\Exchange\\', MsiProductMajor: 15, MsiProductMinor: 1, MsiBuildMajor: 2176, MsiBuildMinor: 2 } }, { name: 'MailboxRole', values: {} }, { name: 'UnifiedMessagingRole', values: {} }],
    exsetup: null,
    services: ['MSExchangeHM', 'MSExchangeHMRecovery', 'MSExchangeUM', 'MSExchangeUMCR'].map((name) => ({ name, displayName: name, status: 'Running', startType: 'Automatic' })),
    cachtokn: null,
    os: null,
    environment: null,
    appPools: ['MSExchangeECPAppPool', 'MSExchangeOABAppPool'].map((name) => ({ name, state: 'Started', autoStart: true, startMode: 'OnDemand' })),
    applicationHost: null,
    missing: [],
  };
}

describe('selection', () => {
  const audit = entries({ 'proxylogon-cookie': 'needed', 'proxylogon-ecp-apppool': 'needed', 'proxynotshell-autodiscover': 'mitigated', owassrf: 'patch-only', 'tokencache-module': 'outdated' });
  const table: { name: string; ids: string[]; needed: boolean; allowBreaking: boolean; expect: [string, string][] }[] = [
    { name: '--needed leaves breaking ones out and lists what is in effect', ids: [], needed: true, allowBreaking: false, expect: [['proxylogon-cookie', 'go'], ['proxylogon-ecp-apppool', 'skip'], ['proxynotshell-autodiscover', 'already'], ['tokencache-module', 'go']] },
    { name: '--needed --allow-breaking takes breaking ones too', ids: [], needed: true, allowBreaking: true, expect: [['proxylogon-cookie', 'go'], ['proxylogon-ecp-apppool', 'go'], ['proxynotshell-autodiscover', 'already'], ['tokencache-module', 'go']] },
    { name: 'a named breaking one goes ahead without the flag', ids: ['proxylogon-ecp-apppool'], needed: false, allowBreaking: false, expect: [['proxylogon-ecp-apppool', 'go']] },
    { name: 'a named patch-only one is skipped', ids: ['owassrf'], needed: false, allowBreaking: false, expect: [['owassrf', 'skip']] },
    { name: 'a CVE names its mitigation once', ids: ['CVE-2022-41082', 'proxynotshell-autodiscover'], needed: false, allowBreaking: false, expect: [['proxynotshell-autodiscover', 'already']] },
  ];
  for (const t of table) {
    it(t.name, () => {
      const selected = selectForApply(catalog, audit, { ids: t.ids, needed: t.needed, allowBreaking: t.allowBreaking });
      assert.deepEqual(
        selected.map((s) => [s.mitigation.id, s.skip !== null ? 'skip' : s.already ? 'already' : 'go']).sort(),
        [...t.expect].sort(),
      );
    });
  }

  it('an unknown id is a usage error naming it and the nearest id', () => {
    assert.throws(() => resolveIds(catalog, ['proxylogon-cookies']), (e: unknown) => e instanceof ExmitError && e.code === 2 && /"proxylogon-cookies"/.test(e.message) && /proxylogon-cookie/.test(e.hint ?? ''));
    assert.equal(nearestId(catalog, 'zzzzzzzzzzzzzz'), null);
  });
});

describe('changes', () => {
  const input = { server: detectServer(facts2016()), facts: facts2016(), existingNames: new Set<string>(['exmit proxylogon-cookie anonresource']), globalModules: new Map([['tokencachemodule', { image: '%windir%\\System32\\inetsrv\\cachtokn.dll', xml: null, after: null }]]) };
  const all = selectForApply(catalog, entries(Object.fromEntries(catalog.mitigations.map((m) => [m.id, 'needed' as Status]))), { ids: [], needed: true, allowBreaking: true });
  const plan = planChanges(all, input);

  it('stops Managed Availability before anything it would restart, then the other services, app pools, rules, modules', () => {
    const kinds = plan.changes.map((c) => (c.change.kind === 'service' ? `service:${c.change.name}` : c.change.kind));
    assert.deepEqual(kinds.slice(0, 2), ['service:MSExchangeHM', 'service:MSExchangeHMRecovery']);
    const rank = (k: string): number => (k.startsWith('service:MSExchangeHM') ? 0 : k.startsWith('service:') ? 1 : k === 'app-pool' ? 2 : k.endsWith('-rule') ? 3 : 4);
    assert.deepEqual([...kinds].map(rank), [...kinds].map(rank).sort((a, b) => a - b));
  });

  it('Managed Availability is one change held by every mitigation that stops it', () => {
    const hm = plan.changes.find((c) => c.change.key === 'service:msexchangehm');
    assert.deepEqual(hm?.holders.sort(), ['proxylogon-ecp-apppool', 'proxylogon-oab-apppool', 'proxylogon-um-services']);
  });

  it('never writes a rule name that exists on the path: the next free "name N"', () => {
    const names = plan.changes.filter((c): c is HeldChange & { change: { kind: 'inbound-rule' } } => c.change.kind === 'inbound-rule').map((c) => c.change.name);
    assert.ok(names.includes('exmit proxylogon-cookie anonresource 2'));
    assert.equal(uniqueName('exmit x', new Set(['exmit x', 'exmit x 2'])), 'exmit x 3');
    assert.equal(uniqueName('exmit x', new Set()), 'exmit x');
  });

  it('a live server gets one step per change, an outbound rule\'s precondition first; restore runs in reverse with Managed Availability last', () => {
    const steps = liveApplySteps(plan.changes);
    const pre = steps.findIndex((s) => s.kind === 'iisElement' && s.collection === 'preConditions');
    const rule = steps.findIndex((s) => s.kind === 'iisElement' && s.section.endsWith('outboundRules') && s.collection === null);
    assert.ok(pre >= 0 && pre < rule);
    assert.deepEqual(steps[0], { kind: 'service', name: 'MSExchangeHM', expect: { status: 'Running', startType: 'Automatic' }, to: { status: 'Stopped', startType: 'Disabled' } });
    const ledger = ledgerAfterApply(emptyLedger(), { runId: 'r', at: 'now', catalogSerial: 1 }, plan.changes, plan.byMitigation, {});
    const restore = liveRestoreSteps(Object.values(ledger.resources));
    const last = restore[restore.length - 1];
    assert.equal(last?.kind === 'service' ? last.name : null, 'MSExchangeHM');
    assert.deepEqual(last?.kind === 'service' ? last.to : null, { status: 'Running', startType: 'Automatic' });
    const outRule = restore.findIndex((s) => s.kind === 'iisElement' && s.op === 'remove' && s.collection === null && s.section.endsWith('outboundRules'));
    const outPre = restore.findIndex((s) => s.kind === 'iisElement' && s.op === 'remove' && s.collection === 'preConditions');
    assert.ok(outRule < outPre, 'the rule goes before its precondition');
  });

  it('rolling back one holder of a shared service releases nothing shared', () => {
    const ledger = ledgerAfterApply(emptyLedger(), { runId: 'r', at: 'now', catalogSerial: 1 }, plan.changes, plan.byMitigation, {});
    const { released, ledger: next } = ledgerAfterRollback(ledger, ['proxylogon-ecp-apppool'], 'r2', {});
    assert.deepEqual(released.map((r) => r.key), ['app-pool:msexchangeecpapppool']);
    assert.ok(next.resources['service:msexchangehm']?.holders.includes('proxylogon-oab-apppool'));
    assert.equal(next.mitigations['proxylogon-ecp-apppool'], undefined);
  });
});

describe('ledger and journal files are untrusted', () => {
  it('a ledger round-trips, and any field of the wrong type is an error naming the file and field', () => {
    const ledger = emptyLedger();
    ledger.mitigations['x'] = { appliedAt: 'now', catalogSerial: 1, runId: 'r', resources: ['service:a'] };
    ledger.resources['service:a'] = { kind: 'service', name: 'A', original: { status: 'Running', startType: 'Automatic' }, applied: { status: 'Stopped', startType: 'Disabled' }, holders: ['x'] };
    assert.deepEqual(parseLedger(serializeLedger(ledger), 'ledger.json'), ledger);
    const bad = JSON.parse(serializeLedger(ledger)) as { resources: Record<string, { kind: string }> };
    const r = bad.resources['service:a'];
    if (r !== undefined) r.kind = 'registry';
    assert.throws(() => parseLedger(JSON.stringify(bad), '/img/.exmit/ledger.json'), /\/img\/\.exmit\/ledger\.json: field resources\.service:a\.kind/);
    assert.throws(() => parseLedger('{"version":1,"lastRun":null,"mitigations":{"x":{"appliedAt":"a","catalogSerial":1,"runId":"r","resources":["nope"]}},"resources":{},"files":{}}', 'l'), /nope is not in resources/);
    assert.throws(() => parseLedger('not json', 'l'), /l: not valid JSON/);
  });

  it('a journal cut by a crash keeps what was flushed; damage elsewhere is an error naming the line', () => {
    const lines = ['{"t":"begin","runId":"r1","mode":"apply","catalogSerial":5,"at":"now","plan":{},"steps":[{"kind":"file","path":"a"},{"kind":"file","path":"b"}]}', '{"t":"intent","step":0,"prior":{"sha256":null}}', '{"t":"done","step":0,"after":{"sha256":"x"}}', '{"t":"intent","step":1,"prior":{"sha256":"y"}}', '{"t":"do'];
    const run = parseJournal(lines.join('\n'), 'j');
    assert.equal(run.outcome, null);
    assert.deepEqual(unfinishedRuns([run]).map((r) => r.runId), ['r1']);
    assert.deepEqual(stepsToRepair(run).map((s) => s.index), [1, 0]);
    assert.throws(() => parseJournal([lines[0], 'garbage', lines[1]].join('\n'), 'j.jsonl'), /j\.jsonl line 2: not a journal entry/);
    assert.throws(() => parseJournal('{"t":"intent","step":0}', 'j.jsonl'), /must start with its begin entry/);
    const ended = parseJournal([...lines.slice(0, 4), '{"t":"undone","step":1}', '{"t":"undone","step":0}', '{"t":"end","outcome":"undone"}'].join('\n'), 'j');
    assert.equal(ended.outcome, 'undone');
    assert.deepEqual(stepsToRepair(ended), []);
  });
});

describe('repairing an interrupted live run', () => {
  const reading = (status: string, startType: string, pool: { state: string; autoStart: boolean }) => ({
    reading: { facts: { ...facts2016(), services: [{ name: 'MSExchangeHM', displayName: 'HM', status, startType }], appPools: [{ name: 'MSExchangeECPAppPool', startMode: 'OnDemand', ...pool }] }, server: detectServer(facts2016()) },
    iis: null,
  });
  const serviceStep = { kind: 'service', name: 'MSExchangeHM', expect: { status: 'Running', startType: 'Automatic' }, to: { status: 'Stopped', startType: 'Disabled' } };
  const prior = { status: 'Running', startType: 'Automatic', delayedStart: false };
  const started = { state: 'Started', autoStart: true };

  it('a service as it was needs nothing; as the run set it is set back; anything else is a conflict', () => {
    assert.deepEqual(liveRepairStep(serviceStep, prior, reading('Running', 'Automatic', started)), { kind: 'none' });
    const back = liveRepairStep(serviceStep, prior, reading('Stopped', 'Disabled', started));
    assert.equal(back.kind, 'step');
    assert.deepEqual(back.kind === 'step' ? back.step : null, { kind: 'service', name: 'MSExchangeHM', expect: { status: 'Stopped', startType: 'Disabled' }, to: { status: 'Running', startType: 'Automatic' } });
    const other = liveRepairStep(serviceStep, prior, reading('Stopped', 'Manual', started));
    assert.equal(other.kind, 'conflict');
  });

  it('an app pool the run stopped is started again with autoStart back', () => {
    const poolStep = { kind: 'appPool', name: 'MSExchangeECPAppPool', expect: started, to: { state: 'Stopped', autoStart: false } };
    const back = liveRepairStep(poolStep, started, reading('Running', 'Automatic', { state: 'Stopped', autoStart: false }));
    assert.deepEqual(back.kind === 'step' ? back.step : null, { kind: 'appPool', name: 'MSExchangeECPAppPool', expect: { state: 'Stopped', autoStart: false }, to: started });
  });
});
