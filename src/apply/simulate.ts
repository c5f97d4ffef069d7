/** The server's facts as they will be once a plan's service and app pool changes are made: what verification audits before anything is executed. */
import type { AppPoolFact, ServerFacts, ServiceFact } from '../facts.ts';
import type { HeldChange } from './changes.ts';

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
