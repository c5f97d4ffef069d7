/** Evaluates probe requests against an effective URL Rewrite configuration, with ECMAScript patterns and the server variables rules use. */
import type { Probe } from '../catalog/types.ts';
import type { EffectiveCondition, EffectiveRewrite, InboundRule, OutboundRule, PatternSyntax, RuleRef } from './merge.ts';
import { urlPathOnly } from './sites.ts';
import { execBounded } from './regex-worker.ts';

/** What happened to one rule while a probe was evaluated. */
export interface TraceEntry {
  rule: RuleRef;
  /** disabled: skipped; no-match: pattern, conditions or precondition did not match; matched: the action ran. */
  result: 'disabled' | 'no-match' | 'matched';
  /** The action that ran (matched rules only). */
  action: string | null;
  /** True when evaluation ended at this rule (blocking action, redirect, custom response, or stopProcessing). */
  stopped: boolean;
  /** What the model could not judge or that differs from the published form: invalid pattern, IsFile/IsDirectory, Wildcard, case-sensitive. */
  notes: string[];
  /** Why a pattern of the rule could not be evaluated (it ran out of its time budget, or could take exponential time); empty when every pattern ran. */
  unevaluated: string[];
}

/** A rule whose outcome is unknown because one of its patterns was not evaluated: callers err on the side of caution. */
export interface UnevaluatedRule {
  rule: RuleRef;
  reason: string;
}

/** The rules of a trace that could not be evaluated. */
export function unevaluatedRules(trace: readonly TraceEntry[]): UnevaluatedRule[] {
  return trace.flatMap((t) => t.unevaluated.map((reason) => ({ rule: t.rule, reason })));
}

/** Notes of one rule, with the patterns that were not evaluated kept apart. */
type Notes = string[] & { unevaluated: string[] };

/** How inbound evaluation ended. */
export type InboundOutcome = 'blocked' | 'passed' | 'redirected' | 'responded' | 'proxied' | 'rewrite-inactive';

/** The result of evaluating an inbound probe. */
export interface InboundVerdict {
  blocked: boolean;
  outcome: InboundOutcome;
  /** The rule that blocked the probe (null when not blocked). */
  by: RuleRef | null;
  /** The rule at which evaluation ended for any reason, blocking or not (a stopProcessing rule that shadows later ones). */
  stoppedBy: RuleRef | null;
  /** Status code sent by a CustomResponse or Redirect that ended evaluation. */
  statusCode: number | null;
  /** Path and query after Rewrite actions. */
  finalUrl: string;
  trace: TraceEntry[];
}

/** The result of applying outbound rules to a probe's response. */
export interface OutboundResult {
  /** Response headers after the rules ran. */
  headers: Record<string, string>;
  /** Rules whose action changed a header, in order. */
  applied: RuleRef[];
  rewriteActive: boolean;
  trace: TraceEntry[];
}

/** A probe's verdict: stopped means blocked (inbound) or the expected header content is present (outbound). */
export interface ProbeVerdict {
  probe: Probe;
  direction: 'inbound' | 'outbound';
  stopped: boolean;
  /** attack/bypass: stopped; ordinary inbound: not stopped; ordinary outbound: always true (extra header content harms no ordinary response). */
  asExpected: boolean;
  by: RuleRef | null;
  inbound: InboundVerdict | null;
  outbound: OutboundResult | null;
}

interface Captures {
  r: string[];
  c: string[];
}

type Vars = (name: string) => string;

/** Evaluates an inbound probe against the effective rules in IIS order, and says whether (and by which rule) it is blocked. */
export function evaluateInbound(effective: EffectiveRewrite, probe: Probe): InboundVerdict {
  const trace: TraceEntry[] = [];
  const rawPath = urlPathOnly(probe.url);
  const q = probe.url.indexOf('?');
  const state = { path: decodePercent(rawPath), query: q >= 0 ? probe.url.slice(q + 1) : '' };
  const finalUrl = (): string => state.path + (state.query === '' ? '' : `?${state.query}`);
  const result = (outcome: InboundOutcome, rule: InboundRule | null, statusCode: number | null = null): InboundVerdict => ({
    blocked: outcome === 'blocked',
    outcome,
    by: outcome === 'blocked' && rule !== null ? rule.ref : null,
    stoppedBy: rule?.ref ?? null,
    statusCode,
    finalUrl: finalUrl(),
    trace,
  });
  if (!effective.rewriteModuleActive) return result('rewrite-inactive', null);

  const vars = requestVars(probe, () => state.path, () => state.query);
  for (const rule of effective.inboundRules) {
    const notes = ruleNotes(rule.patternSyntax, rule.match.ignoreCase, rule.conditions.items);
    if (!rule.enabled) {
      trace.push({ rule: rule.ref, result: 'disabled', action: null, stopped: false, notes, unevaluated: notes.unevaluated });
      continue;
    }
    const input = relativePath(state.path, rule.baseUrlPath);
    const m = matchPattern(rule.match.url, rule.patternSyntax, rule.match.ignoreCase, input, notes);
    const urlMatched = rule.match.negate ? !m.ok && m.valid : m.ok;
    const caps: Captures = { r: rule.match.negate ? [] : m.captures, c: [] };
    if (!urlMatched || !conditionsMatch(rule.conditions.logicalGrouping, rule.conditions.trackAllCaptures, rule.conditions.items, rule.patternSyntax, vars, caps, notes)) {
      trace.push({ rule: rule.ref, result: 'no-match', action: null, stopped: false, notes, unevaluated: notes.unevaluated });
      continue;
    }
    const entry: TraceEntry = { rule: rule.ref, result: 'matched', action: rule.action.type, stopped: true, notes, unevaluated: notes.unevaluated };
    trace.push(entry);
    switch (rule.action.type) {
      case 'AbortRequest':
        return result('blocked', rule);
      case 'CustomResponse':
        return result(rule.action.statusCode === 403 ? 'blocked' : 'responded', rule, rule.action.statusCode);
      case 'Redirect':
        return result('redirected', rule, redirectStatus(rule.action.attributes.redirectType));
      case 'Rewrite': {
        const target = expand(rule.action.url, vars, caps);
        if (/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) return result('proxied', rule);
        applyRewrite(state, target, rule);
        break;
      }
      case 'None':
        break;
      default:
        notes.push(`action type "${rule.action.type}" is unknown: treated as None`);
    }
    if (rule.stopProcessing) return result('passed', rule);
    entry.stopped = false;
  }
  return result('passed', null);
}

/** Applies the outbound rules whose precondition matches to the probe's response headers, and returns the resulting headers. */
export function evaluateOutbound(effective: EffectiveRewrite, probe: Probe): OutboundResult {
  const headers: Record<string, string> = { ...(probe.response?.headers ?? {}) };
  const trace: TraceEntry[] = [];
  const applied: RuleRef[] = [];
  if (!effective.rewriteModuleActive || probe.response === null) {
    return { headers, applied, rewriteActive: effective.rewriteModuleActive, trace };
  }
  const contentType = probe.response.contentType;
  const request = requestVars(probe, () => decodePercent(urlPathOnly(probe.url)), () => queryOf(probe.url));
  const vars: Vars = (name) => {
    if (name === 'RESPONSE_CONTENT_TYPE') return contentType;
    if (name.startsWith('RESPONSE_')) return headerValue(headers, name.slice('RESPONSE_'.length)) ?? '';
    return request(name);
  };

  for (const rule of effective.outboundRules) {
    const notes = ruleNotes(rule.patternSyntax, rule.match.ignoreCase, rule.conditions.items);
    if (!rule.enabled) {
      trace.push({ rule: rule.ref, result: 'disabled', action: null, stopped: false, notes, unevaluated: notes.unevaluated });
      continue;
    }
    const caps = preConditionMatches(effective, rule, vars, notes) ? outboundMatches(rule, vars, notes) : null;
    if (caps === null) {
      trace.push({ rule: rule.ref, result: 'no-match', action: null, stopped: false, notes, unevaluated: notes.unevaluated });
      continue;
    }
    const entry: TraceEntry = { rule: rule.ref, result: 'matched', action: rule.action.type, stopped: rule.stopProcessing, notes, unevaluated: notes.unevaluated };
    trace.push(entry);
    if (rule.action.type === 'Rewrite' && rule.match.serverVariable !== null) {
      setHeader(headers, rule.match.serverVariable, expand(rule.action.value, vars, caps));
      applied.push(rule.ref);
    } else if (rule.action.type !== 'None') {
      notes.push(`action type "${rule.action.type}" is not modelled for outbound rules`);
    }
    if (rule.stopProcessing) break;
  }
  return { headers, applied, rewriteActive: true, trace };
}

/** Judges each probe against the effective configuration at its own path: inbound probes by blocking, outbound probes (with response and expectHeader) by header content. */
export function judgeProbes(effectiveFor: (probe: Probe) => EffectiveRewrite, probes: readonly Probe[]): ProbeVerdict[] {
  return probes.map((probe) => {
    const effective = effectiveFor(probe);
    if (probe.response !== null && probe.expectHeader !== null) {
      const outbound = evaluateOutbound(effective, probe);
      const value = headerValue(outbound.headers, probe.expectHeader.name) ?? '';
      const stopped = value.includes(probe.expectHeader.contains);
      const by = stopped ? (outbound.applied.at(-1) ?? null) : null;
      return { probe, direction: 'outbound', stopped, asExpected: probe.kind === 'ordinary' || stopped, by, inbound: null, outbound };
    }
    const inbound = evaluateInbound(effective, probe);
    const asExpected = probe.kind === 'ordinary' ? !inbound.blocked : inbound.blocked;
    return { probe, direction: 'inbound', stopped: inbound.blocked, asExpected, by: inbound.by, inbound, outbound: null };
  });
}

/** Percent-decodes a string as UTF-8 the way {UrlDecode:...} does; never throws: a "%" without two hex digits stays, invalid UTF-8 becomes U+FFFD. */
export function decodePercent(value: string): string {
  return value.replace(/(?:%[0-9a-fA-F]{2})+/g, (run) => {
    const bytes = new Uint8Array(run.length / 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Number.parseInt(run.slice(i * 3 + 1, i * 3 + 3), 16);
    return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  });
}

/** Expands a URL Rewrite input or value string: {SERVER_VARIABLE}, {R:n}, {C:n}, {UrlDecode:...}, {UrlEncode:...}, {ToLower:...}; unknown variables and rewrite maps give the empty string. */
export function expandInput(template: string, vars: (name: string) => string, captures: { r: string[]; c: string[] } = { r: [], c: [] }): string {
  return expand(template, vars, captures);
}

function expand(template: string, vars: Vars, caps: Captures): string {
  let out = '';
  let i = 0;
  while (i < template.length) {
    const ch = template[i];
    if (ch !== '{') {
      out += ch;
      i++;
      continue;
    }
    let depth = 0;
    let j = i;
    for (; j < template.length; j++) {
      if (template[j] === '{') depth++;
      else if (template[j] === '}' && --depth === 0) break;
    }
    if (j >= template.length) {
      out += template.slice(i);
      break;
    }
    out += expandReference(template.slice(i + 1, j), vars, caps);
    i = j + 1;
  }
  return out;
}

function expandReference(inner: string, vars: Vars, caps: Captures): string {
  const back = /^([RC]):(\d+)$/i.exec(inner);
  if (back !== null) {
    const list = back[1]?.toUpperCase() === 'R' ? caps.r : caps.c;
    return list[Number(back[2])] ?? '';
  }
  const colon = inner.indexOf(':');
  if (colon > 0) {
    const fn = inner.slice(0, colon).toLowerCase();
    const arg = expand(inner.slice(colon + 1), vars, caps);
    if (fn === 'urldecode') return decodePercent(arg);
    if (fn === 'urlencode') return encodeURIComponent(arg);
    if (fn === 'tolower') return arg.toLowerCase();
    return '';
  }
  return vars(inner.trim().toUpperCase());
}

function requestVars(probe: Probe, path: () => string, query: () => string): Vars {
  return (name) => {
    switch (name) {
      case 'REQUEST_URI':
      case 'UNENCODED_URL':
      case 'HTTP_URL':
        return probe.url;
      case 'URL':
      case 'PATH_INFO':
      case 'SCRIPT_NAME':
        return path();
      case 'QUERY_STRING':
        return query();
      case 'REQUEST_METHOD':
        return probe.method;
    }
    if (name.startsWith('HTTP_')) return headerValue(probe.headers, name.slice('HTTP_'.length)) ?? '';
    return '';
  };
}

function headerValue(headers: Record<string, string>, name: string): string | undefined {
  const want = name.toUpperCase().replace(/-/g, '_');
  for (const [k, v] of Object.entries(headers)) {
    if (k.toUpperCase().replace(/-/g, '_') === want) return v;
  }
  return undefined;
}

function setHeader(headers: Record<string, string>, serverVariable: string, value: string): void {
  const bare = serverVariable.replace(/^RESPONSE_/i, '');
  const want = bare.toUpperCase().replace(/-/g, '_');
  const existing = Object.keys(headers).find((k) => k.toUpperCase().replace(/-/g, '_') === want);
  const key = existing ?? bare.replace(/_/g, '-');
  if (value === '') delete headers[key];
  else headers[key] = value;
}

function queryOf(url: string): string {
  const q = url.indexOf('?');
  return q >= 0 ? url.slice(q + 1) : '';
}

function relativePath(path: string, base: string): string {
  const lowerPath = path.toLowerCase();
  const lowerBase = base.toLowerCase();
  if (base === '/' || lowerBase === '') return path.replace(/^\/+/, '');
  if (lowerPath === lowerBase) return '';
  if (lowerPath.startsWith(lowerBase + '/')) return path.slice(base.length + 1);
  return path.replace(/^\/+/, '');
}

function applyRewrite(state: { path: string; query: string }, target: string, rule: InboundRule): void {
  const q = target.indexOf('?');
  const newPath = q >= 0 ? target.slice(0, q) : target;
  const newQuery = q >= 0 ? target.slice(q + 1) : '';
  const absolute = newPath.startsWith('/') ? newPath : `${rule.baseUrlPath.replace(/\/$/, '')}/${newPath}`;
  const query = rule.action.appendQueryString && state.query !== '' ? (newQuery === '' ? state.query : `${newQuery}&${state.query}`) : newQuery;
  state.path = decodePercent(absolute);
  state.query = query;
}

function redirectStatus(redirectType: string | undefined): number {
  switch ((redirectType ?? 'Permanent').toLowerCase()) {
    case 'found':
      return 302;
    case 'seeother':
      return 303;
    case 'temporary':
      return 307;
    default:
      return 301;
  }
}

function ruleNotes(syntax: PatternSyntax, ignoreCase: boolean, conditions: EffectiveCondition[]): Notes {
  const notes: Notes = Object.assign([] as string[], { unevaluated: [] as string[] });
  if (syntax !== 'ECMAScript') notes.push(`patternSyntax ${syntax}`);
  if (!ignoreCase) notes.push('match is case-sensitive (ignoreCase="false")');
  for (const c of conditions) {
    if (!c.ignoreCase && c.matchType === 'Pattern') notes.push(`condition on ${c.input} is case-sensitive (ignoreCase="false")`);
  }
  return notes;
}

// Returns the rule's back-references when its pattern and conditions match, null otherwise.
function outboundMatches(rule: OutboundRule, vars: Vars, notes: Notes): Captures | null {
  if (rule.match.filterByTags !== null || rule.match.serverVariable === null) {
    notes.push('a response-body rule (filterByTags) is not evaluated');
    return null;
  }
  const input = vars(rule.match.serverVariable.toUpperCase());
  const m = matchPattern(rule.match.pattern, rule.patternSyntax, rule.match.ignoreCase, input, notes);
  const ok = rule.match.negate ? !m.ok && m.valid : m.ok;
  if (!ok) return null;
  const caps: Captures = { r: rule.match.negate ? [] : m.captures, c: [] };
  const conditions = rule.conditions;
  return conditionsMatch(conditions.logicalGrouping, conditions.trackAllCaptures, conditions.items, rule.patternSyntax, vars, caps, notes) ? caps : null;
}

function preConditionMatches(effective: EffectiveRewrite, rule: OutboundRule, vars: Vars, notes: Notes): boolean {
  if (rule.preCondition === null) return true;
  const name = rule.preCondition.toLowerCase();
  const pre = effective.preConditions.find((p) => p.name.toLowerCase() === name);
  if (pre === undefined) {
    notes.push(`preCondition "${rule.preCondition}" is not defined at this path (IIS answers HTTP 500.52)`);
    return false;
  }
  return conditionsMatch(pre.logicalGrouping, false, pre.conditions, pre.patternSyntax, vars, { r: [], c: [] }, notes);
}

function conditionsMatch(
  grouping: 'MatchAll' | 'MatchAny',
  trackAll: boolean,
  items: EffectiveCondition[],
  syntax: PatternSyntax,
  vars: Vars,
  caps: Captures,
  notes: Notes,
): boolean {
  if (items.length === 0) return true;
  const collected: string[] = [];
  for (const cond of items) {
    const ok = conditionMatches(cond, syntax, vars, caps, notes);
    if (ok !== null) {
      if (trackAll) collected.push(...ok);
      else caps.c = ok;
      if (trackAll) caps.c = collected;
      if (grouping === 'MatchAny') return true;
    } else if (grouping === 'MatchAll') {
      return false;
    }
  }
  return grouping === 'MatchAll';
}

// Returns the condition's captures when it matches, null otherwise.
function conditionMatches(cond: EffectiveCondition, syntax: PatternSyntax, vars: Vars, caps: Captures, notes: Notes): string[] | null {
  if (cond.matchType !== 'Pattern') {
    notes.push(`condition on ${cond.input} (line ${cond.line}) uses matchType ${cond.matchType}, which cannot be judged without the server's files: treated as not matching`);
    return null;
  }
  const input = expand(cond.input, vars, caps);
  const m = matchPattern(cond.pattern, syntax, cond.ignoreCase, input, notes);
  if (cond.negate) return !m.ok && m.valid ? [] : null;
  return m.ok ? m.captures : null;
}

interface MatchResult {
  ok: boolean;
  /** False when the pattern could not be compiled: neither the pattern nor its negation matches. */
  valid: boolean;
  captures: string[];
}

const regexCache = new Map<string, RegExp | string>();
/** Patterns that ran out of their time budget in this run, with the reason: not run again. */
const exhausted = new Map<string, string>();

function matchPattern(pattern: string, syntax: PatternSyntax, ignoreCase: boolean, input: string, notes: Notes): MatchResult {
  if (syntax === 'ExactMatch') {
    const ok = ignoreCase ? pattern.toLowerCase() === input.toLowerCase() : pattern === input;
    return { ok, valid: true, captures: ok ? [input] : [] };
  }
  const source = syntax === 'Wildcard' ? wildcardToRegex(pattern) : pattern;
  const flags = ignoreCase ? 'i' : '';
  const key = `${flags}/${source}`;
  let re = regexCache.get(key);
  if (re === undefined) {
    if (hasNestedQuantifier(source)) {
      re = NESTED;
    } else {
      try {
        re = new RegExp(source, flags);
      } catch (err) {
        re = `${err instanceof Error ? err.message : String(err)}`;
      }
    }
    regexCache.set(key, re);
  }
  if (typeof re === 'string') {
    notes.push(`pattern "${pattern}" is not evaluated as an ECMAScript regular expression (${re}): the rule does not match`);
    if (re === NESTED) notes.unevaluated.push(`pattern "${pattern}" ${re}`);
    return { ok: false, valid: false, captures: [] };
  }
  // Only patterns that cannot backtrack much run here; any other runs in the worker with a time budget.
  if (isLinear(source)) {
    const m = re.exec(input);
    return m === null ? { ok: false, valid: true, captures: [] } : { ok: true, valid: true, captures: m.map((g) => g ?? '') };
  }
  let spent = exhausted.get(key);
  if (spent === undefined) {
    const result = execBounded(source, flags, input);
    if (result.kind === 'match') return { ok: true, valid: true, captures: result.captures };
    if (result.kind === 'no-match') return { ok: false, valid: true, captures: [] };
    spent = result.kind === 'timeout' ? `ran out of its time budget (${result.budgetMs} ms on a ${input.length}-character input)` : `could not be run (${result.message})`;
    exhausted.set(key, spent);
  }
  notes.push(`pattern "${pattern}" was not evaluated: it ${spent}: the rule's outcome is unknown`);
  notes.unevaluated.push(`pattern "${pattern}" ${spent}`);
  return { ok: false, valid: false, captures: [] };
}

const NESTED = 'it nests quantifiers, which can take exponential time, so it is not run';

/**
 * A pattern that runs in linear time on any input, so it needs no worker: no quantifier
 * (`*`, `+`, `?`, `{`), no alternation and no back-reference. Conservative: anything else goes to
 * the worker.
 */
function isLinear(source: string): boolean {
  let afterGroupOpen = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    const groupOpen = afterGroupOpen;
    afterGroupOpen = false;
    if (ch === '(') {
      afterGroupOpen = true;
    } else if (ch === '\\') {
      const next = source[i + 1] ?? '';
      if (/[1-9k]/.test(next)) return false;
      i++;
    } else if (ch === '[') {
      for (i++; i < source.length && source[i] !== ']'; i++) if (source[i] === '\\') i++;
    } else if (ch === '*' || ch === '+' || ch === '{' || ch === '|') {
      return false;
    } else if (ch === '?' && !groupOpen) {
      return false;
    }
  }
  return true;
}

// Configuration comes from servers that may be compromised: a pattern such as (a+)+ could hang the audit on a probe, so quantified groups that contain a quantifier are refused.
function hasNestedQuantifier(source: string): boolean {
  const groups: boolean[] = [];
  let lastGroupHadQuantifier = false;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') {
      i++;
      lastGroupHadQuantifier = false;
    } else if (ch === '[') {
      for (i++; i < source.length && source[i] !== ']'; i++) if (source[i] === '\\') i++;
      lastGroupHadQuantifier = false;
    } else if (ch === '(') {
      groups.push(false);
      lastGroupHadQuantifier = false;
    } else if (ch === ')') {
      lastGroupHadQuantifier = groups.pop() ?? false;
      if (lastGroupHadQuantifier && groups.length > 0) groups[groups.length - 1] = true;
      continue;
    } else if (ch === '*' || ch === '+' || (ch === '{' && /^\{\d+,\d*\}/.test(source.slice(i)))) {
      if (lastGroupHadQuantifier) return true;
      if (groups.length > 0) groups[groups.length - 1] = true;
    } else {
      lastGroupHadQuantifier = false;
    }
  }
  return false;
}

function wildcardToRegex(pattern: string): string {
  return `^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')).join('(.*)')}$`;
}
