// For every rule mitigation of the bundled catalog: its own attack probes are stopped by the published
// rule and by EEMS's and EOMT's forms of it, its ordinary probes pass, and the bypass probes get
// through the autumn-2022 ProxyNotShell forms. Rules are placed where those tools place them, in the
// real e19 configuration, and judged through the IIS merge and evaluator.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadBundledCatalog } from '../../src/catalog/parse.ts';
import type { InboundRuleAction, Mitigation, OutboundRuleAction, Probe } from '../../src/catalog/types.ts';
import { renderInboundRule, renderOutboundRule } from '../../src/iis/render.ts';
import { effectiveRewrite } from '../../src/iis/merge.ts';
import { evaluateInbound, evaluateOutbound } from '../../src/iis/rewrite-eval.ts';
import { configKey } from '../../src/iis/sites.ts';
import { e19, inApphostLocation, appendToWebConfig, PATHS, type Scenario } from '../fixtures/iis/scenario.ts';

const catalog = loadBundledCatalog();
const ruleMitigations = catalog.mitigations.filter((m) => m.actions.some((a) => a.kind === 'inbound-rule' || a.kind === 'outbound-rule'));

/** Where and how each tool writes its form of a mitigation. */
interface Form {
  tool: string;
  place: (s: Scenario, m: Mitigation) => Scenario;
}

function inboundXml(m: Mitigation, names: (a: InboundRuleAction, i: number) => string): string {
  const rules = m.actions.filter((a): a is InboundRuleAction => a.kind === 'inbound-rule').map((a, i) => renderInboundRule(a, names(a, i)));
  return rules.length === 0 ? '' : `<rules>${rules.join('')}</rules>`;
}

function outboundXml(m: Mitigation, names: (a: OutboundRuleAction) => string): string {
  const parts = m.actions.filter((a): a is OutboundRuleAction => a.kind === 'outbound-rule').map((a) => renderOutboundRule(a, names(a)));
  return parts.length === 0 ? '' : `<outboundRules>${parts.map((p) => p.rule).join('')}<preConditions>${parts.map((p) => p.preCondition).join('')}</preConditions></outboundRules>`;
}

const EOMT_NAMES: Record<string, string> = {
  'exmit proxynotshell-autodiscover': 'PowerShell - inbound',
  'exmit proxylogon-cookie anonresource': 'X-AnonResource-Backend Abort - inbound',
  'exmit proxylogon-cookie beresource': 'X-BEResource Abort - inbound',
};

const forms: Form[] = [
  {
    tool: 'exmit (applicationHost.config locations)',
    place: (s, m) => {
      let out = s;
      const inbound = inboundXml(m, (a) => a.name);
      if (inbound !== '') out = inApphostLocation(out, 'Default Web Site', `<rewrite>${inbound}</rewrite>`);
      const outbound = outboundXml(m, (a) => a.name);
      if (outbound !== '') out = inApphostLocation(out, 'Default Web Site/owa', `<rewrite>${outbound}</rewrite>`);
      return out;
    },
  },
  {
    tool: 'EEMS (site root web.config, outside the inherit-false location)',
    place: (s, m) => {
      const inbound = inboundXml(m, (_a, i) => `EEMS M1.${i + 1} ${m.id} - inbound`);
      const outbound = outboundXml(m, () => 'EEMS M2.1 OWA CSP - outbound');
      return appendToWebConfig(s, PATHS.wwwroot, `<system.webServer><rewrite>${inbound}${outbound}</rewrite></system.webServer>`);
    },
  },
  {
    tool: 'EOMT (Default Web Site through the IIS API)',
    place: (s, m) => {
      const inbound = inboundXml(m, (a) => EOMT_NAMES[a.name] ?? a.name);
      const outbound = outboundXml(m, (a) => a.name);
      let out = s;
      if (inbound !== '') out = inApphostLocation(out, 'Default Web Site', `<rewrite>${inbound}</rewrite>`);
      if (outbound !== '') out = inApphostLocation(out, 'Default Web Site/owa', `<rewrite>${outbound}</rewrite>`);
      return out;
    },
  },
];

function stopped(s: Scenario, probe: Probe): boolean {
  const webConfigs = new Map(Object.entries(s.webConfigs).map(([k, v]) => [configKey(k), v]));
  const effective = effectiveRewrite({ apphost: s.apphost, webConfigs, site: probe.site, urlPath: probe.url });
  if (probe.response === null) return evaluateInbound(effective, probe).blocked;
  const expect = probe.expectHeader;
  if (expect === null) return false;
  const headers = evaluateOutbound(effective, probe).headers;
  const value = Object.entries(headers).find(([k]) => k.toLowerCase() === expect.name.toLowerCase())?.[1] ?? '';
  return value.includes(expect.contains);
}

describe('every rule mitigation of the bundled catalog, judged by its own probes', () => {
  assert.ok(ruleMitigations.length >= 3, 'the catalog carries the rule mitigations');
  for (const m of ruleMitigations) {
    describe(m.id, () => {
      it('without any rule, no attack probe is stopped', () => {
        for (const p of m.probes.filter((x) => x.kind === 'attack')) assert.equal(stopped(e19(), p), false, p.description);
      });
      for (const form of forms) {
        it(`${form.tool}: every attack and bypass probe stopped, every ordinary inbound probe passes`, () => {
          const s = form.place(e19(), m);
          for (const p of m.probes) {
            if (p.kind === 'ordinary' && p.response === null) assert.equal(stopped(s, p), false, `ordinary blocked: ${p.description}`);
            if (p.kind !== 'ordinary') assert.equal(stopped(s, p), true, `${p.kind} not stopped: ${p.description}`);
          }
        });
      }
    });
  }
});

describe('the autumn-2022 ProxyNotShell forms', () => {
  const m = catalog.mitigations.find((x) => x.id === 'proxynotshell-autodiscover');
  assert.ok(m);
  const variants = [
    { input: '{REQUEST_URI}', pattern: '.*autodiscover\\.json.*\\@.*Powershell.*' },
    { input: '{REQUEST_URI}', pattern: '.*autodiscover\\.json.*Powershell.*' },
    { input: '{UrlDecode:{REQUEST_URI}}', pattern: '.*autodiscover\\.json.*\\@.*Powershell.*' },
    { input: '{UrlDecode:{REQUEST_URI}}', pattern: '.*autodiscover\\.json.*Powershell.*' },
  ];
  for (const v of variants) {
    it(`${v.pattern} on ${v.input}: stops a published attack, lets a bypass through`, () => {
      const rule = `<rewrite><rules><rule name="PowerShell - inbound" stopProcessing="true"><match url=".*" /><conditions><add input="${v.input}" pattern="${v.pattern}" /></conditions><action type="AbortRequest" /></rule></rules></rewrite>`;
      const s = inApphostLocation(e19(), 'Default Web Site', rule);
      const attacks = m.probes.filter((p) => p.kind === 'attack');
      assert.ok(attacks.some((p) => stopped(s, p)), 'the published exploit is stopped');
      const bypasses = m.probes.filter((p) => p.kind === 'bypass');
      assert.ok(bypasses.some((p) => !stopped(s, p)), 'some bypass gets through');
    });
  }
  it('the final rule placed only on the Autodiscover virtual directory stops the published exploit but not the same shape on another path', () => {
    const action = m.actions.find((a): a is InboundRuleAction => a.kind === 'inbound-rule');
    assert.ok(action);
    const s = appendToWebConfig(e19(), PATHS.autodiscover, `<system.webServer><rewrite><rules>${renderInboundRule(action)}</rules></rewrite></system.webServer>`);
    for (const p of m.probes.filter((x) => x.kind === 'attack')) assert.equal(stopped(s, p), true);
    const elsewhere = m.probes.filter((x) => x.kind === 'bypass' && !x.url.toLowerCase().startsWith('/autodiscover'));
    assert.ok(elsewhere.length > 0);
    for (const p of elsewhere) assert.equal(stopped(s, p), false, p.description);
  });
});
