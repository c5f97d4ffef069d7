/**
 * Turns planned changes into the engine's steps for a live server: services and app pools through
 * their own APIs, rules and global modules through Microsoft.Web.Administration. Pure data; the
 * engine re-checks `expect` just before each change and journals the prior state.
 */
import type { InboundRuleAction, OutboundRuleAction, RuleCondition } from '../catalog/types.ts';
import type { AppPoolState, Change, HeldChange, ServiceState } from './changes.ts';
import type { LedgerResource } from './ledger.ts';

/** An IIS configuration element as Microsoft.Web.Administration creates it. */
export interface IisElement {
  name: string;
  attributes: Record<string, string>;
  children: IisElement[];
}

/** One step the engine executes on a live server. */
export type LiveStep =
  | { kind: 'service'; name: string; expect: ServiceState; to: ServiceState }
  | { kind: 'appPool'; name: string; expect: AppPoolState; to: AppPoolState }
  | { kind: 'iisElement'; op: 'add' | 'remove'; location: string | null; section: string; collection: string | null; element: IisElement; key: { name: string } }
  | { kind: 'globalModule'; op: 'add' | 'remove'; name: string; image: string };

const RULES = 'system.webServer/rewrite/rules';
const OUTBOUND = 'system.webServer/rewrite/outboundRules';

function conditionElements(conditions: readonly RuleCondition[]): IisElement[] {
  return conditions.map((c) => ({
    name: 'add',
    attributes: { input: c.input, pattern: c.pattern, ...(c.negate ? { negate: 'true' } : {}), ...(c.ignoreCase ? {} : { ignoreCase: 'false' }) },
    children: [],
  }));
}

/** The `<rule>` element of an inbound rule, as exmit writes it. */
export function inboundRuleElement(action: InboundRuleAction): IisElement {
  const children: IisElement[] = [{ name: 'match', attributes: { url: action.matchUrl }, children: [] }];
  if (action.conditions.length > 0) children.push({ name: 'conditions', attributes: { logicalGrouping: action.logicalGrouping }, children: conditionElements(action.conditions) });
  const act = action.action;
  children.push(
    act.type === 'AbortRequest'
      ? { name: 'action', attributes: { type: 'AbortRequest' }, children: [] }
      : { name: 'action', attributes: { type: 'CustomResponse', statusCode: '403', statusReason: act.statusReason, statusDescription: act.statusDescription }, children: [] },
  );
  return { name: 'rule', attributes: { name: action.name, stopProcessing: String(action.stopProcessing) }, children };
}

/** The `<preCondition>` and `<rule>` elements of an outbound rule. */
export function outboundElements(action: OutboundRuleAction): { preCondition: IisElement; rule: IisElement } {
  const pre = action.precondition;
  return {
    preCondition: { name: 'preCondition', attributes: { name: pre.name, logicalGrouping: pre.logicalGrouping }, children: conditionElements(pre.conditions) },
    rule: {
      name: 'rule',
      attributes: { name: action.name, preCondition: pre.name },
      children: [
        { name: 'match', attributes: { serverVariable: action.serverVariable, pattern: action.pattern }, children: [] },
        { name: 'action', attributes: { type: 'Rewrite', value: action.value }, children: [] },
      ],
    },
  };
}

/** Steps that make the changes, in the plan's order (an outbound rule's precondition before the rule). */
export function liveApplySteps(changes: readonly HeldChange[]): LiveStep[] {
  return changes.flatMap(({ change }) => applyStepsOf(change));
}

function applyStepsOf(change: Change): LiveStep[] {
  switch (change.kind) {
    case 'service':
      return [{ kind: 'service', name: change.name, expect: change.before, to: change.after }];
    case 'app-pool':
      if (change.before === null) throw new Error(`app pool ${change.name}: state unknown`);
      return [{ kind: 'appPool', name: change.name, expect: change.before, to: change.after }];
    case 'inbound-rule':
      return [{ kind: 'iisElement', op: 'add', location: change.location, section: RULES, collection: null, element: inboundRuleElement(change.action), key: { name: change.name } }];
    case 'outbound-rule': {
      const { preCondition, rule } = outboundElements(change.action);
      return [
        { kind: 'iisElement', op: 'add', location: change.location, section: OUTBOUND, collection: 'preConditions', element: preCondition, key: { name: change.action.precondition.name } },
        { kind: 'iisElement', op: 'add', location: change.location, section: OUTBOUND, collection: null, element: rule, key: { name: change.name } },
      ];
    }
    case 'remove-global-module':
      return [{ kind: 'globalModule', op: 'remove', name: change.name, image: change.image }];
  }
}

/** Steps that restore released resources (the caller has left out those someone else changed since: conflicts), in reverse of the apply order (rules and modules first, Managed Availability last; an outbound rule before its precondition). */
export function liveRestoreSteps(released: readonly LedgerResource[]): LiveStep[] {
  const order = (r: LedgerResource): number => {
    switch (r.kind) {
      case 'remove-global-module':
        return 0;
      case 'inbound-rule':
      case 'outbound-rule':
        return 1;
      case 'app-pool':
        return 2;
      case 'service':
        return /^msexchangehm/i.test(r.name) ? 4 : 3;
    }
  };
  const steps: LiveStep[] = [];
  // The exact reverse of the apply order: by kind, and within a kind the last applied first.
  for (const r of [...released].reverse().sort((a, b) => order(a) - order(b))) {
    switch (r.kind) {
      case 'remove-global-module':
        steps.push({ kind: 'globalModule', op: 'add', name: r.name, image: r.image });
        break;
      case 'inbound-rule':
        steps.push({ kind: 'iisElement', op: 'remove', location: r.location, section: RULES, collection: null, element: { name: 'rule', attributes: { name: r.name }, children: [] }, key: { name: r.name } });
        break;
      case 'outbound-rule':
        steps.push({ kind: 'iisElement', op: 'remove', location: r.location, section: OUTBOUND, collection: null, element: { name: 'rule', attributes: { name: r.name }, children: [] }, key: { name: r.name } });
        steps.push({ kind: 'iisElement', op: 'remove', location: r.location, section: OUTBOUND, collection: 'preConditions', element: { name: 'preCondition', attributes: { name: r.preCondition }, children: [] }, key: { name: r.preCondition } });
        break;
      case 'app-pool':
        if (r.original !== null) steps.push({ kind: 'appPool', name: r.name, expect: r.applied, to: r.original });
        break;
      case 'service':
        steps.push({ kind: 'service', name: r.name, expect: r.applied, to: r.original });
        break;
    }
  }
  return steps;
}
