/** The server's facts as they will be once a plan's service and app pool changes are made: what verification audits before anything is executed. */
import type { AppPoolFact, ServerFacts, ServiceFact } from '../facts.ts';
import type { HeldChange } from './changes.ts';
import type { LedgerResource } from './ledger.ts';

/** Facts with the planned service and app pool states in place (rules are judged on the new configuration text, not here). */
export function factsAfterChanges(facts: ServerFacts, changes: readonly HeldChange[]): ServerFacts {
  let services = facts.services;
  let appPools = facts.appPools;
  for (const { change } of changes) {
    if (change.kind === 'service' && services !== null) {
      services = services.map((s): ServiceFact => (s.name.toLowerCase() === change.name.toLowerCase() ? { ...s, status: change.after.status, startType: change.after.startType } : s));
    }
    if (change.kind === 'app-pool') {
      const pool: AppPoolFact = { name: change.name, state: change.after.state, autoStart: change.after.autoStart, startMode: 'OnDemand' };
      const list = appPools ?? [];
      const found = list.some((p) => p.name.toLowerCase() === change.name.toLowerCase());
      appPools = found ? list.map((p) => (p.name.toLowerCase() === change.name.toLowerCase() ? { ...p, state: pool.state, autoStart: pool.autoStart } : p)) : [...list, pool];
    }
  }
  return { ...facts, services, appPools };
}

/** Facts with released services and app pools back in their original state. */
export function factsAfterRestore(facts: ServerFacts, released: readonly LedgerResource[]): ServerFacts {
  let services = facts.services;
  let appPools = facts.appPools;
  for (const r of released) {
    if (r.kind === 'service' && services !== null) {
      services = services.map((s) => (s.name.toLowerCase() === r.name.toLowerCase() ? { ...s, status: r.original.status, startType: r.original.startType } : s));
    }
    if (r.kind === 'app-pool' && appPools !== null && r.original !== null) {
      const original = r.original;
      appPools = appPools.map((p) => (p.name.toLowerCase() === r.name.toLowerCase() ? { ...p, state: original.state, autoStart: original.autoStart } : p));
    }
  }
  return { ...facts, services, appPools };
}
