/**
 * The pure apply planner: which resources each selected mitigation changes on this server, from
 * what to what, in a safe order. It reads no file and spawns nothing; images and live servers turn
 * the same changes into their own steps (image-steps.ts, live-steps.ts).
 */
import type { Action, InboundRuleAction, Mitigation, OutboundRuleAction } from '../catalog/types.ts';
import type { ServerFacts } from '../facts.ts';
import type { DetectResult } from '../exchange/detect.ts';
import { actionApplies } from '../audit/plan.ts';
import type { Selected } from './select.ts';

/** A service's state as exmit changes and restores it. */
export interface ServiceState {
  status: string;
  startType: string;
}

/** An app pool's state as exmit changes and restores it. */
export interface AppPoolState {
  state: string;
  autoStart: boolean;
}

/** Managed Availability: stopped before anything it would restart, restored after. */
export const MANAGED_AVAILABILITY: readonly string[] = ['msexchangehm', 'msexchangehmrecovery'];

/** The state exmit leaves a service in. */
export const SERVICE_OFF: ServiceState = { status: 'Stopped', startType: 'Disabled' };

/** The state exmit leaves an app pool in. */
export const APP_POOL_OFF: AppPoolState = { state: 'Stopped', autoStart: false };

/** One resource exmit changes, keyed so that two mitigations that change it share it. */
export type Change =
  | { kind: 'service'; key: string; name: string; before: ServiceState; after: ServiceState }
  | { kind: 'app-pool'; key: string; name: string; before: AppPoolState | null; after: AppPoolState }
  | { kind: 'inbound-rule'; key: string; location: string; name: string; action: InboundRuleAction }
  | { kind: 'outbound-rule'; key: string; location: string; name: string; action: OutboundRuleAction }
  | { kind: 'remove-global-module'; key: string; name: string; image: string; xml: string | null; after: string | null };

/** A change and the mitigations that need it. */
export interface HeldChange {
  change: Change;
  holders: string[];
}

/** What an apply run will do, before it is turned into steps. */
export interface ChangePlan {
  /** In execution order: Managed Availability, other services, app pools, rules, modules. */
  changes: HeldChange[];
  /** Per selected mitigation: the keys of the changes it holds (new or already exmit's). */
  byMitigation: Map<string, string[]>;
}

/** What the planner knows about the server's current state. */
export interface PlanInput {
  server: DetectResult;
  facts: ServerFacts;
  /** Every rule and precondition name that exists anywhere in the configuration on the paths exmit writes to (lower case). */
  existingNames: ReadonlySet<string>;
  /** Global modules registered now, by lower-case name: their image, and where an image's applicationHost.config has their entry, its text and the name of the entry before it (to put it back in place). */
  globalModules: ReadonlyMap<string, { image: string; xml: string | null; after: string | null }>;
}

/** Resource key of a service. */
export function serviceKey(name: string): string {
  return `service:${name.toLowerCase()}`;
}

/** Resource key of an app pool. */
export function appPoolKey(name: string): string {
  return `app-pool:${name.toLowerCase()}`;
}

/** Resource key of a rule at a location. */
export function ruleKey(kind: 'inbound-rule' | 'outbound-rule', location: string, name: string): string {
  return `${kind}:${location.toLowerCase()}|${name.toLowerCase()}`;
}

/** Resource key of a global module removal. */
export function moduleKey(name: string): string {
  return `module:${name.toLowerCase()}`;
}

/** Plans the changes for the selected mitigations that go ahead: only actions that apply to this server and are not yet in effect. */
export function planChanges(selected: readonly Selected[], input: PlanInput): ChangePlan {
  const byKey = new Map<string, HeldChange>();
  const byMitigation = new Map<string, string[]>();
  const usedNames = new Set(input.existingNames);
  for (const s of selected) {
    if (s.skip !== null || s.already) continue;
    const keys: string[] = [];
    const rulesNeeded = s.entry.status !== 'partial' || !rulesInEffect(s);
    for (const action of s.mitigation.actions) {
      if (!actionApplies(action, input.server)) continue;
      const change = changeFor(action, input, rulesNeeded, usedNames);
      if (change === null) continue;
      keys.push(change.key);
      const held = byKey.get(change.key);
      if (held === undefined) byKey.set(change.key, { change, holders: [s.mitigation.id] });
      else if (!held.holders.includes(s.mitigation.id)) held.holders.push(s.mitigation.id);
    }
    byMitigation.set(s.mitigation.id, keys);
  }
  const changes = [...byKey.values()].sort((a, b) => rank(a.change) - rank(b.change));
  return { changes, byMitigation };
}

// A partial entry whose reason says the rules stop every attack probe needs only its other actions.
function rulesInEffect(s: Selected): boolean {
  return /stops every attack probe/.test(s.entry.reason);
}

function changeFor(action: Action, input: PlanInput, rulesNeeded: boolean, usedNames: Set<string>): Change | null {
  switch (action.kind) {
    case 'service': {
      const fact = input.facts.services?.find((f) => f.name.toLowerCase() === action.name.toLowerCase());
      if (fact === undefined) return null; // not installed here (or the export is missing: verification catches that)
      if (fact.status.toLowerCase() === 'stopped' && fact.startType.toLowerCase() === 'disabled') return null;
      return { kind: 'service', key: serviceKey(fact.name), name: fact.name, before: { status: fact.status, startType: fact.startType }, after: SERVICE_OFF };
    }
    case 'app-pool': {
      const fact = input.facts.appPools?.find((p) => p.name.toLowerCase() === action.name.toLowerCase());
      if (fact !== undefined && fact.state.toLowerCase() === 'stopped' && !fact.autoStart) return null;
      const name = fact?.name ?? action.name;
      return { kind: 'app-pool', key: appPoolKey(name), name, before: fact === undefined ? null : { state: fact.state, autoStart: fact.autoStart }, after: APP_POOL_OFF };
    }
    case 'inbound-rule':
    case 'outbound-rule': {
      if (!rulesNeeded) return null;
      const name = uniqueName(action.name, usedNames);
      usedNames.add(name.toLowerCase());
      if (action.kind === 'outbound-rule') {
        const preName = uniqueName(action.precondition.name, usedNames);
        usedNames.add(preName.toLowerCase());
        const renamed: OutboundRuleAction = { ...action, name, precondition: { ...action.precondition, name: preName } };
        return { kind: 'outbound-rule', key: ruleKey('outbound-rule', action.location, name), location: action.location, name, action: renamed };
      }
      return { kind: 'inbound-rule', key: ruleKey('inbound-rule', action.location, name), location: action.location, name, action: { ...action, name } };
    }
    case 'remove-global-module': {
      const module = input.globalModules.get(action.name.toLowerCase());
      if (module === undefined) return null; // already absent: in effect, whoever removed it
      return { kind: 'remove-global-module', key: moduleKey(action.name), name: action.name, image: module.image, xml: module.xml, after: module.after };
    }
  }
}

/** The catalog's name, or the first "name 2", "name 3", ... that exists nowhere on the path (a duplicate name is an HTTP 500.19). */
export function uniqueName(name: string, used: ReadonlySet<string>): string {
  if (!used.has(name.toLowerCase())) return name;
  for (let i = 2; ; i++) {
    const candidate = `${name} ${i}`;
    if (!used.has(candidate.toLowerCase())) return candidate;
  }
}

// Managed Availability first (it restarts what is stopped), then other services, app pools, rules, modules.
function rank(change: Change): number {
  switch (change.kind) {
    case 'service':
      return MANAGED_AVAILABILITY.includes(change.name.toLowerCase()) ? 0 : 1;
    case 'app-pool':
      return 2;
    case 'inbound-rule':
    case 'outbound-rule':
      return 3;
    case 'remove-global-module':
      return 4;
  }
}

/** A change in words, for the plan and the prompt ("stop and disable service MSExchangeHM (now Running, Automatic)"). */
export function describeChange(change: Change): string {
  switch (change.kind) {
    case 'service':
      return `stop and disable service ${change.name} (now ${change.before.status}, ${change.before.startType})`;
    case 'app-pool':
      return `stop app pool ${change.name} and set autoStart false${change.before === null ? '' : ` (now ${change.before.state}, autoStart ${String(change.before.autoStart)})`}`;
    case 'inbound-rule':
      return `add inbound URL Rewrite rule "${change.name}" at ${change.location}`;
    case 'outbound-rule':
      return `add outbound URL Rewrite rule "${change.name}" with precondition "${change.action.precondition.name}" at ${change.location}`;
    case 'remove-global-module':
      return `remove IIS global module ${change.name} (${change.image}); IIS recycles its worker processes`;
  }
}

/** Whether a mitigation's changes make IIS recycle (rules and modules do; services and app pools are stopped, not recycled). */
export function recyclesIis(m: Mitigation): boolean {
  return m.actions.some((a) => a.kind === 'inbound-rule' || a.kind === 'outbound-rule' || a.kind === 'remove-global-module');
}
