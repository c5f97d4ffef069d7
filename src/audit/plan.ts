/**
 * The pure audit planner: catalog + detected server + facts + an IIS judge -> one status per
 * mitigation. It touches no file and spawns nothing, so it is tested with tables.
 */
import type { Action, Catalog, Mitigation, Probe, Role } from '../catalog/types.ts';
import type { DetectResult } from '../exchange/detect.ts';
import type { ServerFacts } from '../facts.ts';
import { fixState, windowsFixState } from '../catalog/fixed.ts';
import { compareBuilds, parseBuild } from '../exchange/build.ts';

/** The statuses of the contract. */
export type Status = 'needed' | 'partial' | 'outdated' | 'mitigated' | 'fixed' | 'patch-only' | 'not-applicable' | 'blocked';

/** Statuses that make audit exit 3. */
export const EXPOSED: ReadonlySet<Status> = new Set<Status>(['needed', 'partial', 'outdated', 'patch-only']);

/** Where a rule that decided a probe came from. */
export interface RuleOrigin {
  name: string;
  /** Windows path of the file and, in applicationHost.config, the location path. */
  file: string;
  location: string | null;
}

/** A rule whose outcome on a probe is unknown (a pattern ran out of its time budget): the audit errs on the side of caution. */
export interface UnevaluatedOrigin {
  origin: RuleOrigin;
  reason: string;
}

/** What IIS would do with one inbound probe. */
export interface InboundVerdict {
  blocked: boolean;
  by: RuleOrigin | null;
  /** Rules on the probe's path that could not be evaluated. */
  unevaluated?: UnevaluatedOrigin[];
  /** Configuration errors on the probe's path (IIS answers HTTP 500.19 there), each naming its file and line. */
  problems?: string[];
}

/** What IIS would do to one probe's response. */
export interface OutboundVerdict {
  headers: Record<string, string>;
  /** Outbound rules that ran on it. */
  applied: RuleOrigin[];
  /** Rules on the probe's path that could not be evaluated. */
  unevaluated?: UnevaluatedOrigin[];
  /** Configuration errors on the probe's path (IIS answers HTTP 500.19 there), each naming its file and line. */
  problems?: string[];
}

/** The IIS side of the audit: answers questions about the merged configuration. */
export interface IisJudge {
  inbound(probe: Probe): InboundVerdict;
  outbound(probe: Probe): OutboundVerdict;
  /** Outbound rules in effect at a site path (to recognise unpublished forms by name). */
  outboundRulesAt(site: string, urlPath: string): { name: string; serverVariable: string; origin: RuleOrigin }[];
  /** IIS global modules by name. */
  globalModules(): { name: string; image: string }[];
  /** Why system.webServer/globalModules cannot be read (a configSource IIS refuses), or null. */
  globalModulesProblem?(): string | null;
}

/** What the planner knows about the server. */
export interface AuditInput {
  server: DetectResult;
  facts: ServerFacts;
  /** null when there is no IIS configuration to judge (Edge, tools only, or missing). */
  iis: IisJudge | null;
  /** Why `iis` is null, when it matters. */
  iisMissing: string | null;
  blocked: ReadonlySet<string>;
}

/** One line of the audit, as `audit --json` prints it. */
export interface AuditEntry {
  id: string;
  title: string;
  cves: string[];
  status: Status;
  reason: string;
  stillApplied: boolean;
  breaks: string | null;
  sideEffects: string[];
  /** The update that fixes it on this server, when one exists for its CU. */
  fixedBy: { build: string; update: string } | null;
  /** For `outdated`: the bypass probes that the rule in place lets through (people see them with --verbose). */
  bypasses: string[];
}

/** Runs the audit over every mitigation of the catalog. */
export function auditServer(catalog: Catalog, input: AuditInput): AuditEntry[] {
  return catalog.mitigations.map((m) => auditMitigation(m, input));
}

/** Whether an action concerns this server (product and role filters of services). */
export function actionApplies(action: Action, server: DetectResult): boolean {
  if (action.kind !== 'service') return true;
  if (action.products.length > 0 && !action.products.includes(server.productKey)) return false;
  if (action.roles.length > 0 && !action.roles.some((r) => server.roles.includes(r))) return false;
  return true;
}

/** Evidence of one action: in effect, not, or not judgeable (with what is missing). */
export type ActionEvidence =
  | { action: Action; state: 'in-effect'; detail: string }
  | { action: Action; state: 'absent'; detail: string }
  | { action: Action; state: 'unknown'; detail: string }
  | { action: Action; state: 'not-present'; detail: string };

/** Decides one mitigation: applicability, blocked, fixed, then evidence in the configuration. */
export function auditMitigation(m: Mitigation, input: AuditInput): AuditEntry {
  const { server } = input;
  const base = { id: m.id, title: m.title, cves: m.cves, breaks: m.breaks, sideEffects: m.sideEffects, stillApplied: false, fixedBy: null, bypasses: [] };
  const entry = (status: Status, reason: string, extra: Partial<AuditEntry> = {}): AuditEntry => ({ ...base, status, reason, ...extra });

  const notApplicable = m.notApplicable.find((n) => n.product === server.productKey);
  if (notApplicable !== undefined) return entry('not-applicable', notApplicable.reason);
  if (!m.products.includes(server.productKey)) return entry('not-applicable', `${server.product} is not affected`);
  if (!m.roles.some((r) => server.roles.includes(r))) return entry('not-applicable', roleReason(server.roles, m.roles));

  if (input.blocked.has(m.id.toLowerCase())) return entry('blocked', 'blocked by the administrator in exmit\'s configuration (blocked)');

  const evidence = collectEvidence(m, input);
  const inPlace = evidence.actions.some((e) => e.state === 'in-effect') || evidence.rules.attackStopped > 0;

  if (m.fix.kind === 'windows') {
    const w = windowsFixState(m, input.facts.os?.version ?? null, input.facts.cachtokn?.version ?? null);
    if (w.state === 'not-affected') return entry('not-applicable', w.reason);
    if (w.state === 'fixed') return entry('fixed', w.reason + (inPlace ? '; the mitigation is still in place and can be rolled back' : ''), { stillApplied: inPlace });
    return judgeEvidence(m, server, evidence, entry, w.state === 'unknown' ? `${w.reason}; judged as vulnerable` : w.reason, null);
  }

  const fix = fixState(m, server.productKey, server.build);
  const fixedBy = fix.fixedBuild !== null && fix.update !== null ? { build: fix.fixedBuild, update: fix.update } : null;
  if (fix.state === 'fixed' || fix.state === 'unknown-newer') {
    // A rule that is not there is not mentioned: the advice to keep it only when one is in place.
    const keep = inPlace ? keepAdvice(m, server) : '';
    return entry('fixed', fix.reason + keep + (inPlace ? '; the mitigation is still in place and can be rolled back' : ''), { stillApplied: inPlace, fixedBy });
  }
  let reason = fix.reason;
  if (!server.suLevelKnown && fixedBy !== null) {
    reason = `build ${server.build} comes from the registry (SU level unknown); this CU is fixed from ${fixedBy.build} (${fixedBy.update}); judged as vulnerable`;
  }
  return judgeEvidence(m, server, evidence, entry, reason, fixedBy);
}

/** The reason an entry is not applicable by role. */
function roleReason(serverRoles: Role[], needed: Role[]): string {
  if (serverRoles.includes('EdgeTransport')) return 'Edge Transport servers get no IIS mitigations and are not affected';
  if (serverRoles.length === 1 && serverRoles[0] === 'ManagementTools') return 'management tools only: no Exchange web services run here';
  return `affects only servers with the ${needed.join(' or ')} role`;
}

/** The owa-csp-xss advice: on June builds keep the rule until the July update. */
function keepAdvice(m: Mitigation, server: DetectResult): string {
  if (m.fix.kind !== 'exchange') return '';
  const product = m.fix.products.find((p) => p.product === server.productKey);
  const cuRemoval = product?.safeToRemoveFrom.find((u) => u.cu === server.cu);
  if (cuRemoval === undefined) return '';
  const build = parseBuild(server.build);
  const removal = parseBuild(cuRemoval.build);
  if (build !== null && removal !== null && compareBuilds(build, removal) >= 0) return '';
  return `; Microsoft keeps its mitigation in place on this build: remove the rule only after installing ${cuRemoval.update} (${cuRemoval.build})`;
}

interface RuleEvidence {
  /** Inbound or outbound probes exist for this mitigation. */
  judged: boolean;
  attackTotal: number;
  attackStopped: number;
  bypassTotal: number;
  bypassStopped: number;
  stoppedBy: RuleOrigin[];
  bypassesThrough: string[];
  ordinaryBlocked: string[];
  missing: string | null;
  unevaluated: UnevaluatedOrigin[];
  /** Configuration errors on the probes' paths. */
  problems: string[];
}

interface Evidence {
  actions: ActionEvidence[];
  rules: RuleEvidence;
}

function collectEvidence(m: Mitigation, input: AuditInput): Evidence {
  const actions: ActionEvidence[] = [];
  for (const action of m.actions) {
    if (!actionApplies(action, input.server)) continue;
    if (action.kind === 'inbound-rule' || action.kind === 'outbound-rule') continue;
    actions.push(judgeAction(action, input));
  }
  return { actions, rules: judgeRules(m, input) };
}

function judgeAction(action: Exclude<Action, { kind: 'inbound-rule' | 'outbound-rule' }>, input: AuditInput): ActionEvidence {
  const { facts } = input;
  switch (action.kind) {
    case 'app-pool': {
      if (facts.appPools === null) return { action, state: 'unknown', detail: `app pool ${action.name}: state unknown (${input.facts.target.kind === 'image' ? 'apppools.xml missing' : 'IIS app pools not readable'})` };
      const pool = facts.appPools.find((p) => p.name.toLowerCase() === action.name.toLowerCase());
      if (pool === undefined) return { action, state: 'not-present', detail: `app pool ${action.name} does not exist` };
      const stopped = pool.state.toLowerCase() === 'stopped' && !pool.autoStart;
      return { action, state: stopped ? 'in-effect' : 'absent', detail: `app pool ${action.name} is ${pool.state.toLowerCase()}, autoStart ${String(pool.autoStart)}` };
    }
    case 'service': {
      if (facts.services === null) return { action, state: 'unknown', detail: `service ${action.name}: state unknown (${input.facts.target.kind === 'image' ? 'services.xml missing' : 'services not readable'})` };
      const service = facts.services.find((s) => s.name.toLowerCase() === action.name.toLowerCase());
      if (service === undefined) return { action, state: 'not-present', detail: `service ${action.name} is not installed` };
      const off = service.status.toLowerCase() === 'stopped' && service.startType.toLowerCase() === 'disabled';
      return { action, state: off ? 'in-effect' : 'absent', detail: `service ${action.name} is ${service.status.toLowerCase()}, ${service.startType.toLowerCase()}` };
    }
    case 'remove-global-module': {
      if (input.iis === null) return { action, state: 'unknown', detail: `global module ${action.name}: ${input.iisMissing ?? 'no IIS configuration'}` };
      const problem = input.iis.globalModulesProblem?.() ?? null;
      if (problem !== null) return { action, state: 'unknown', detail: `global module ${action.name}: configuration error: ${problem}` };
      const present = input.iis.globalModules().some((g) => g.name.toLowerCase() === action.name.toLowerCase());
      return { action, state: present ? 'absent' : 'in-effect', detail: present ? `IIS global module ${action.name} is loaded` : `IIS global module ${action.name} is not loaded` };
    }
  }
}

function judgeRules(m: Mitigation, input: AuditInput): RuleEvidence {
  const hasRuleActions = m.actions.some((a) => a.kind === 'inbound-rule' || a.kind === 'outbound-rule');
  const evidence: RuleEvidence = { judged: hasRuleActions, attackTotal: 0, attackStopped: 0, bypassTotal: 0, bypassStopped: 0, stoppedBy: [], bypassesThrough: [], ordinaryBlocked: [], missing: null, unevaluated: [], problems: [] };
  if (!hasRuleActions) return evidence;
  if (input.iis === null) {
    evidence.missing = input.iisMissing ?? 'no IIS configuration to judge';
    return evidence;
  }
  const outbound = m.actions.find((a): a is Extract<Action, { kind: 'outbound-rule' }> => a.kind === 'outbound-rule');
  for (const probe of m.probes) {
    const stopped = probeStopped(probe, input.iis, outbound, evidence);
    if (probe.kind === 'attack') {
      evidence.attackTotal++;
      if (stopped) evidence.attackStopped++;
    } else if (probe.kind === 'bypass') {
      evidence.bypassTotal++;
      if (stopped) evidence.bypassStopped++;
      else evidence.bypassesThrough.push(probe.description);
    } else if (stopped && probe.response === null) {
      evidence.ordinaryBlocked.push(probe.description);
    }
  }
  return evidence;
}

/** Whether a probe is stopped (inbound) or gets the protective header (outbound). */
function probeStopped(probe: Probe, iis: IisJudge, outbound: Extract<Action, { kind: 'outbound-rule' }> | undefined, evidence: RuleEvidence): boolean {
  if (probe.response === null) {
    const verdict = iis.inbound(probe);
    addUnevaluated(evidence, verdict.unevaluated);
    addProblems(evidence, verdict.problems);
    if (verdict.blocked && verdict.by !== null && probe.kind === 'attack') addOrigin(evidence, verdict.by);
    return verdict.blocked;
  }
  const expect = probe.expectHeader;
  if (expect === null) return false;
  const verdict = iis.outbound(probe);
  addUnevaluated(evidence, verdict.unevaluated);
  addProblems(evidence, verdict.problems);
  const value = Object.entries(verdict.headers).find(([k]) => k.toLowerCase() === expect.name.toLowerCase())?.[1] ?? '';
  if (value.includes(expect.contains)) {
    if (probe.kind === 'attack') for (const o of verdict.applied) addOrigin(evidence, o);
    return true;
  }
  if (outbound !== undefined && probe.kind === 'attack') {
    // Unpublished forms (EEMS M2) are recognised by name prefix and the header they rewrite.
    const path = probe.url.split('?')[0] ?? '/';
    const known = iis
      .outboundRulesAt(probe.site, path)
      .find((r) => outbound.recognisePrefixes.some((p) => r.name.toLowerCase().startsWith(p.toLowerCase())) && r.serverVariable.toLowerCase() === outbound.serverVariable.toLowerCase());
    if (known !== undefined) {
      addOrigin(evidence, known.origin);
      return true;
    }
  }
  return false;
}

function addUnevaluated(evidence: RuleEvidence, found: UnevaluatedOrigin[] | undefined): void {
  for (const u of found ?? []) {
    if (!evidence.unevaluated.some((e) => e.origin.name === u.origin.name && e.origin.file === u.origin.file && e.reason === u.reason)) evidence.unevaluated.push(u);
  }
}

function addProblems(evidence: RuleEvidence, found: string[] | undefined): void {
  for (const p of found ?? []) if (!evidence.problems.includes(p)) evidence.problems.push(p);
}

function addOrigin(evidence: RuleEvidence, origin: RuleOrigin): void {
  if (!evidence.stoppedBy.some((o) => o.name === origin.name && o.file === origin.file)) evidence.stoppedBy.push(origin);
}

function describeOrigins(origins: RuleOrigin[]): string {
  return origins.map((o) => `"${o.name}" (${o.file}${o.location !== null && o.location !== '' ? `, location ${o.location}` : ''})`).join(', ');
}

function judgeEvidence(
  m: Mitigation,
  server: DetectResult,
  evidence: Evidence,
  entry: (status: Status, reason: string, extra?: Partial<AuditEntry>) => AuditEntry,
  vulnerableReason: string,
  fixedBy: { build: string; update: string } | null,
): AuditEntry {
  const relevant = evidence.actions.filter((a) => a.state !== 'not-present');
  const hasRules = evidence.rules.judged;
  const extra = { fixedBy };
  const declared = m.patchOnly.find((p) => p.product === null || p.product === server.productKey);
  if (declared !== undefined || (relevant.length === 0 && !hasRules)) {
    const why = declared?.reason ?? (m.actions.length === 0 ? 'no configuration mitigation exists: only the security update helps' : 'no configuration mitigation exists for this server: only the security update helps');
    return entry('patch-only', `${vulnerableReason}; ${why}`, extra);
  }
  const notes: string[] = [];
  const unknown = relevant.filter((a) => a.state === 'unknown');
  let inEffect = relevant.filter((a) => a.state === 'in-effect').length;
  let total = relevant.length;
  let outdated = false;
  let bypasses: string[] = [];
  const r = evidence.rules;
  if (hasRules) {
    total++;
    if (r.missing !== null) {
      notes.push(r.missing);
    } else if (r.attackTotal > 0 && r.attackStopped === r.attackTotal) {
      if (r.bypassStopped < r.bypassTotal) {
        outdated = true;
        bypasses = r.bypassesThrough;
        const n = r.bypassesThrough.length;
        // A long list of bypasses is kept apart (`bypasses`); a short one stays in the reason.
        const which = n <= 2 ? r.bypassesThrough.join('; ') : `${n} known bypasses (listed in bypasses; --verbose shows them)`;
        notes.push(`${describeOrigins(r.stoppedBy)} stops the published exploit but not ${which}`);
      } else {
        inEffect++;
        notes.push(`${describeOrigins(r.stoppedBy)} stops every attack probe`);
      }
    } else if (r.attackStopped > 0) {
      notes.push(`${describeOrigins(r.stoppedBy)} stops ${r.attackStopped} of ${r.attackTotal} attack probes`);
      total++;
      inEffect++;
    } else {
      notes.push(ruleAbsentText(m));
    }
    if (r.ordinaryBlocked.length > 0) notes.push(`side effect: also blocks ${r.ordinaryBlocked.join('; ')}`);
  }
  for (const a of relevant) if (a.state !== 'in-effect') notes.push(a.detail);
  if (hasRules && r.problems.length > 0) {
    // IIS refuses the configuration on this path (HTTP 500.19) until it is fixed: what it would do then is unknown.
    return entry('needed', `${vulnerableReason}; configuration error IIS refuses on this path (HTTP 500.19 until fixed): ${r.problems.join('; ')}: the mitigation is not counted as in effect; ${notes.join('; ')}`, extra);
  }
  if (hasRules && r.unevaluated.length > 0) {
    // A rule that could not be evaluated might block, pass or shadow the probes: judged as not in effect.
    const which = r.unevaluated.map((u) => `rule ${describeOrigins([u.origin])} was not evaluated (${u.reason})`).join('; ');
    return entry('needed', `${vulnerableReason}; ${which}: the mitigation is not counted as in effect; ${notes.join('; ')}`, extra);
  }
  const temporary =
    m.fix.kind === 'windows'
      ? `temporary: install the ${m.fix.windows.update} or later`
      : fixedBy !== null
        ? `temporary: install ${fixedBy.update} (${fixedBy.build}) or later`
        : 'temporary: move to a CU that has the fix';
  if (outdated) return entry('outdated', `${vulnerableReason}; ${notes.join('; ')}`, { ...extra, stillApplied: true, bypasses });
  if (inEffect === total && unknown.length === 0) {
    const done = relevant.filter((a) => a.state === 'in-effect').map((a) => a.detail);
    return entry('mitigated', `${vulnerableReason}; mitigated: ${[...notes, ...done].join('; ')}; ${temporary}`, { ...extra, stillApplied: true });
  }
  if (inEffect > 0) return entry('partial', `${vulnerableReason}; only part of the mitigation is in effect: ${notes.join('; ')}`, { ...extra, stillApplied: true });
  return entry('needed', `${vulnerableReason}; ${notes.join('; ')}`, extra);
}

function ruleAbsentText(m: Mitigation): string {
  const inbound = m.actions.find((a) => a.kind === 'inbound-rule');
  const attack = m.probes.find((p) => p.kind === 'attack');
  const where = firstSegment(attack !== undefined ? attack.url.split('?')[0] ?? '/' : '/');
  // The probe is named by what it is, not by its URL: a published request is too long to read in a table.
  if (inbound !== undefined) return `no rule that blocks the published exploit takes effect at ${where}`;
  return `no outbound rule adds the protection at ${where}`;
}

function firstSegment(urlPath: string): string {
  const seg = urlPath.split('/').filter((s) => s !== '')[0];
  return seg === undefined ? '/' : `/${seg}`;
}
