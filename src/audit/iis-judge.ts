/** Adapts the IIS model (merge + rule evaluation) to the planner's questions, one merge per site path. */
import type { Probe } from '../catalog/types.ts';
import type { IisReading } from '../server.ts';
import type { IisJudge, InboundVerdict, OutboundVerdict, RuleOrigin, UnevaluatedOrigin } from './plan.ts';
import { effectiveRewrite, type EffectiveRewrite, type RuleRef } from '../iis/merge.ts';
import { evaluateInbound, evaluateOutbound, unevaluatedRules, type TraceEntry } from '../iis/rewrite-eval.ts';
import { readGlobalModules, urlPathOnly } from '../iis/sites.ts';

/** The judge over one server's IIS configuration. */
export function createIisJudge(iis: IisReading): IisJudge {
  const cache = new Map<string, EffectiveRewrite>();
  const effectiveAt = (site: string, url: string): EffectiveRewrite => {
    const key = `${site.toLowerCase()}\u0000${urlPathOnly(url).toLowerCase()}`;
    let effective = cache.get(key);
    if (effective === undefined) {
      effective = effectiveRewrite({ apphost: iis.apphost, webConfigs: iis.webConfigs, site, urlPath: url, env: iis.env });
      cache.set(key, effective);
    }
    return effective;
  };
  return {
    inbound(probe: Probe): InboundVerdict {
      const effective = effectiveAt(probe.site, probe.url);
      const verdict = evaluateInbound(effective, probe);
      const unevaluated = unevaluatedOrigins(verdict.trace);
      if (!verdict.blocked || verdict.by === null) return { blocked: false, by: null, unevaluated };
      // A rule counts only in the published form's syntax: Wildcard or ExactMatch rules do not.
      const rule = effective.inboundRules.find((r) => r.ref === verdict.by);
      if (rule !== undefined && rule.patternSyntax !== 'ECMAScript') return { blocked: false, by: null, unevaluated };
      return { blocked: true, by: origin(verdict.by), unevaluated };
    },
    outbound(probe: Probe): OutboundVerdict {
      const result = evaluateOutbound(effectiveAt(probe.site, probe.url), probe);
      return { headers: result.headers, applied: result.applied.map(origin), unevaluated: unevaluatedOrigins(result.trace) };
    },
    outboundRulesAt(site: string, urlPath: string) {
      const effective = effectiveAt(site, urlPath);
      if (!effective.rewriteModuleActive) return [];
      return effective.outboundRules
        .filter((r) => r.enabled)
        .map((r) => ({ name: r.name, serverVariable: r.match.serverVariable ?? '', origin: origin(r.ref) }));
    },
    globalModules() {
      return readGlobalModules(iis.apphost).map((m) => ({ name: m.name, image: m.image }));
    },
  };
}

function unevaluatedOrigins(trace: readonly TraceEntry[]): UnevaluatedOrigin[] {
  return unevaluatedRules(trace).map((u) => ({ origin: origin(u.rule), reason: u.reason }));
}

function origin(ref: RuleRef): RuleOrigin {
  return { name: ref.name, file: ref.origin.file, location: ref.origin.location };
}
