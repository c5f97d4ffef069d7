/** Renders catalog rule actions as the IIS URL Rewrite XML that exmit writes (and that tests evaluate). */
import type { InboundRuleAction, OutboundRuleAction, RuleCondition } from '../catalog/types.ts';

/** Escapes text for an XML attribute value. */
export function xmlAttr(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

function condition(c: RuleCondition): string {
  const extra = `${c.negate ? ' negate="true"' : ''}${c.ignoreCase ? '' : ' ignoreCase="false"'}`;
  return `<add input="${xmlAttr(c.input)}" pattern="${xmlAttr(c.pattern)}"${extra} />`;
}

/** One inbound `<rule>` element; `name` overrides the action's name (to render other tools' forms). */
export function renderInboundRule(action: InboundRuleAction, name: string = action.name): string {
  const conditions = action.conditions.length === 0 ? '' : `<conditions logicalGrouping="${action.logicalGrouping}">${action.conditions.map(condition).join('')}</conditions>`;
  const act =
    action.action.type === 'AbortRequest'
      ? '<action type="AbortRequest" />'
      : `<action type="CustomResponse" statusCode="403" statusReason="${xmlAttr(action.action.statusReason)}" statusDescription="${xmlAttr(action.action.statusDescription)}" />`;
  return `<rule name="${xmlAttr(name)}" stopProcessing="${String(action.stopProcessing)}"><match url="${xmlAttr(action.matchUrl)}" />${conditions}${act}</rule>`;
}

/** The outbound `<rule>` and its `<preCondition>`, as the two pieces exmit writes (precondition first). */
export function renderOutboundRule(action: OutboundRuleAction, name: string = action.name): { preCondition: string; rule: string } {
  const pre = action.precondition;
  return {
    preCondition: `<preCondition name="${xmlAttr(pre.name)}" logicalGrouping="${pre.logicalGrouping}">${pre.conditions.map(condition).join('')}</preCondition>`,
    rule: `<rule name="${xmlAttr(name)}" preCondition="${xmlAttr(pre.name)}"><match serverVariable="${xmlAttr(action.serverVariable)}" pattern="${xmlAttr(action.pattern)}" /><action type="Rewrite" value="${xmlAttr(action.value)}" /></rule>`,
  };
}
