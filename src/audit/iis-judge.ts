/** Adapts the IIS model (merge + rule evaluation) to the planner's questions, one merge per site path. */
import type { Probe } from '../catalog/types.ts';
import type { IisReading } from '../server.ts';
import type { IisJudge, InboundVerdict, OutboundVerdict, RuleOrigin, UnevaluatedOrigin } from './plan.ts';
import { describeOrigin, effectiveRewrite, type EffectiveRewrite, type RuleRef } from '../iis/merge.ts';
import { SectionReader } from '../iis/config-source.ts';
import { descend } from '../iis/config-xml.ts';
import { evaluateInbound, evaluateOutbound, unevaluatedRules, type TraceEntry } from '../iis/rewrite-eval.ts';
import { readGlobalModules, urlPathOnly } from '../iis/sites.ts';

/**
 * Whether IIS has the URL Rewrite module: RewriteModule among the global modules, read as IIS reads
 * them (a list kept in another file, configSource, included). What apply requires before a rule.
 */
export function rewriteModuleInstalled(judge: IisJudge): boolean {
  return judge.globalModules().some((g) => g.name.toLowerCase() === 'rewritemodule');
}

/** The judge over one server's IIS configuration. */
export function createIisJudge(iis: IisReading): IisJudge {
  const cache = new Map<string, EffectiveRewrite>();
  const sections = new SectionReader(iis.configSources ?? new Map());
  const effectiveAt = (site: string, url: string): EffectiveRewrite => {
    const key = `${site.toLowerCase()}\u0000${urlPathOnly(url).toLowerCase()}`;
    let effective = cache.get(key);
    if (effective === undefined) {
      effective = effectiveRewrite({ apphost: iis.apphost, webConfigs: iis.webConfigs, site, urlPath: url, env: iis.env, configSources: iis.configSources ?? new Map() });
      cache.set(key, effective);
    }
    return effective;
  };
  return {
    inbound(probe: Probe): InboundVerdict {
      const effective = effectiveAt(probe.site, probe.url);
      const verdict = evaluateInbound(effective, probe);
      const unevaluated = unevaluatedOrigins(verdict.trace);
      const problems = problemsOf(effective);
      if (!verdict.blocked || verdict.by === null) return { blocked: false, by: null, unevaluated, problems };
      // A rule counts only in the published form's syntax: Wildcard or ExactMatch rules do not.
      const rule = effective.inboundRules.find((r) => r.ref === verdict.by);
      if (rule !== undefined && rule.patternSyntax !== 'ECMAScript') return { blocked: false, by: null, unevaluated, problems };
      return { blocked: true, by: origin(verdict.by), unevaluated, problems };
    },
    outbound(probe: Probe): OutboundVerdict {
      const effective = effectiveAt(probe.site, probe.url);
      const result = evaluateOutbound(effective, probe);
      return { headers: result.headers, applied: result.applied.map(origin), unevaluated: unevaluatedOrigins(result.trace), problems: problemsOf(effective) };
    },
    outboundRulesAt(site: string, urlPath: string) {
      const effective = effectiveAt(site, urlPath);
      if (!effective.rewriteModuleActive) return [];
      return effective.outboundRules
        .filter((r) => r.enabled)
        .map((r) => ({ name: r.name, serverVariable: r.match.serverVariable ?? '', origin: origin(r.ref) }));
    },
    globalModules() {
      return readGlobalModules(iis.apphost, (el) => {
        const found = sections.read(el, iis.apphost.file);
        return 'problem' in found ? null : found.element;
      }).map((m) => ({ name: m.name, image: m.image }));
    },
    globalModulesProblem() {
      for (const el of descend(iis.apphost.root, 'system.webServer', 'globalModules')) {
        const found = sections.read(el, iis.apphost.file);
        if ('problem' in found) return `${iis.apphost.file} line ${el.line}: ${found.problem}`;
      }
      return null;
    },
  };
}

/** The configuration errors on a merged path, each naming its file and line (IIS answers HTTP 500.19 there). */
function problemsOf(effective: EffectiveRewrite): string[] {
  return effective.problems.map((p) => `${describeOrigin(p.origin)}: ${p.message}`);
}

function unevaluatedOrigins(trace: readonly TraceEntry[]): UnevaluatedOrigin[] {
  return unevaluatedRules(trace).map((u) => ({ origin: origin(u.rule), reason: u.reason }));
}

function origin(ref: RuleRef): RuleOrigin {
  return { name: ref.name, file: ref.origin.file, location: ref.origin.location };
}
