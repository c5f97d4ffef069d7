/**
 * "Do this now": the pure advice planner. From the detected server, the audit's entries and the
 * catalog it returns an ordered list: the mitigations to apply (the exact command), the newest update
 * of the server's own CU and what it fixes, the CU move that fixes the rest, Windows updates, EEMS
 * not doing its job, the support state, and the reminder that mitigating is not remediating.
 * It touches no file and spawns nothing, so it is tested with tables.
 */
import type { Catalog, Mitigation, Product } from '../catalog/types.ts';
import { PRODUCTS } from '../catalog/types.ts';
import { fixState, productName } from '../catalog/fixed.ts';
import type { DetectResult } from '../exchange/detect.ts';
import { compareBuilds, parseBuild } from '../exchange/build.ts';
import { findExact, latestForCu, type BuildEntry } from '../exchange/build-table.ts';
import { currentCus, supportOf } from '../exchange/support.ts';
import { EXPOSED, type AuditEntry } from './plan.ts';

/** The kinds of advice, in the order they are given. */
export type AdviceKind = 'apply' | 'update' | 'cu' | 'windows' | 'eems' | 'support' | 'compromise';

/** One line of "Do this now", as `audit --json` prints it in `advice`. */
export interface Advice {
  kind: AdviceKind;
  text: string;
  /** apply: the exact command line; eems: the command that shows EEMS's state. */
  command?: string;
  /** apply: the mitigation ids the command applies. */
  ids?: string[];
  /** update, cu: the release to install. */
  name?: string;
  build?: string;
  kb?: string | null;
  /** update, cu, windows, eems: the catalog ids it deals with. */
  fixes?: string[];
}

/** What the advice needs besides the server and the entries. */
export interface AdviceOptions {
  /** `--target image:DIR` as the commands should carry it; null for the local server. */
  targetArg: string | null;
  /** Whether IIS has the URL Rewrite module (RewriteModule in globalModules); null when unknown or without IIS. */
  rewriteModule?: boolean | null;
}

/** Where IIS URL Rewrite comes from (exmit apply names the same page when it refuses). */
export const URL_REWRITE_DOWNLOAD = 'https://www.iis.net/downloads/microsoft/url-rewrite';

/** EEMS's published mitigations per catalog id (what EEMS applies on a CU that has an update for it). */
const EEMS_MITIGATIONS: Readonly<Record<string, string>> = {
  'proxynotshell-autodiscover': 'M1',
  'owa-csp-xss': 'M2',
};

/** Statuses of a mitigation that `exmit apply --needed` acts on. */
const APPLICABLE = new Set(['needed', 'partial', 'outdated']);

/** Plans the ordered advice of an audit. */
export function adviseServer(server: DetectResult, entries: AuditEntry[], catalog: Catalog, options: AdviceOptions = { targetArg: null }): Advice[] {
  const advice: Advice[] = [];
  const byId = new Map(catalog.mitigations.map((m) => [m.id, m]));
  advice.push(...applyAdvice(entries, byId, options));

  // Entries that only an Exchange update ends (vulnerable now, or only mitigated for the time being).
  const open = entries.filter((e) => (EXPOSED.has(e.status) || e.status === 'mitigated') && byId.get(e.id)?.fix.kind === 'exchange');
  const update = updateAdvice(server, open, byId);
  if (update !== null) advice.push(update);
  const rest = open.filter((e) => !(update?.fixes ?? []).includes(e.id));
  const move = cuAdvice(server, rest, byId, update !== null);
  if (move !== null) advice.push(move);

  const windows = entries.filter((e) => (EXPOSED.has(e.status) || e.status === 'mitigated') && byId.get(e.id)?.fix.kind === 'windows');
  if (windows.length > 0) {
    advice.push({
      kind: 'windows',
      text: `Install the Windows security updates (October 2023 or later) for ${windows.map((e) => `${e.id} (${e.cves.join(', ')})`).join(', ')}: the fix is Windows's, not Exchange's.`,
      fixes: windows.map((e) => e.id),
    });
  }
  const eems = eemsAdvice(server, entries);
  if (eems !== null) advice.push(eems);
  // A CU move already says that the CU gets no more updates.
  const support = move === null ? supportAdvice(server) : null;
  if (support !== null) advice.push(support);

  const vulnerable = entries.some((e) => EXPOSED.has(e.status) || e.status === 'mitigated') || server.support.state !== 'current';
  if (vulnerable) {
    advice.push({
      kind: 'compromise',
      text: 'Mitigating is not remediating: a server exposed before it was mitigated may already be compromised. Install the security update, then check for compromise (Microsoft\'s Test-ProxyLogon, MSERT, HealthChecker).',
    });
  }
  return advice;
}

/**
 * `exmit apply --needed` for what breaks nothing, and `--allow-breaking` named apart for what stops a
 * feature. Without URL Rewrite, apply refuses any run with a rule in it: the mitigations that need no
 * rule are then named one by one, to apply now, and installing URL Rewrite comes before the rest.
 */
function applyAdvice(entries: AuditEntry[], byId: Map<string, Mitigation>, options: AdviceOptions): Advice[] {
  const target = options.targetArg === null ? '' : ` ${options.targetArg}`;
  const todo = entries.filter((e) => APPLICABLE.has(e.status));
  const needsRewrite = (e: AuditEntry): boolean => (byId.get(e.id)?.actions ?? []).some((a) => a.kind === 'inbound-rule' || a.kind === 'outbound-rule');
  const blocked = options.rewriteModule === false ? todo.filter(needsRewrite) : [];
  const now = todo.filter((e) => !blocked.includes(e));
  const safe = now.filter((e) => e.breaks === null);
  const breaking = now.filter((e) => e.breaks !== null);
  const out: Advice[] = [];
  // Named one by one when --needed would take in the rules that cannot be applied yet.
  const which = (list: AuditEntry[]): string => (blocked.length > 0 ? ` ${list.map((e) => e.id).join(' ')}` : ' --needed');
  if (safe.length > 0) {
    const command = `exmit apply${which(safe)}${target}`;
    out.push({ kind: 'apply', text: `Apply the mitigations that break nothing (${safe.map((e) => e.id).join(', ')}): ${command}`, command, ids: safe.map((e) => e.id) });
  }
  if (breaking.length > 0) {
    const command = `exmit apply${which(breaking)} --allow-breaking${target}`;
    const stops = breaking.map((e) => `${e.id} stops ${e.breaks}`).join('; ');
    out.push({ kind: 'apply', text: `Also apply the mitigations that stop a feature, if you accept it (${stops}): ${command}`, command, ids: breaking.map((e) => e.id) });
  }
  if (blocked.length > 0) {
    const allowBreaking = blocked.some((e) => e.breaks !== null) ? ' --allow-breaking' : '';
    const command = `exmit apply --needed${allowBreaking}${target}`;
    const ids = blocked.map((e) => e.id);
    out.push({
      kind: 'apply',
      text: `Install IIS URL Rewrite 2.1 (${URL_REWRITE_DOWNLOAD}): ${ids.length === 1 ? ids[0] : `${ids.slice(0, -1).join(', ')} and ${ids[ids.length - 1]}`} ${ids.length === 1 ? 'is a URL Rewrite rule' : 'are URL Rewrite rules'}, which IIS cannot run without it, so exmit apply refuses ${ids.length === 1 ? 'it' : 'them'} until it is installed; then: ${command}`,
      command,
      ids,
    });
  }
  return out;
}

/** The catalog ids among `open` that a build fixes. */
function fixedAt(open: AuditEntry[], byId: Map<string, Mitigation>, product: Product, build: string): string[] {
  return open.filter((e) => {
    const m = byId.get(e.id);
    return m !== undefined && fixState(m, product, build).state !== 'vulnerable';
  }).map((e) => e.id);
}

/** The newest update of the server's own CU, when it is newer than the server's build (or the SU level is unknown). */
function updateAdvice(server: DetectResult, open: AuditEntry[], byId: Map<string, Mitigation>): Advice | null {
  if (server.cu === null) return null;
  const latest = latestForCu(server.productKey, server.cu);
  if (latest === null) return null;
  const own = parseBuild(server.build);
  const newer = own === null || compareBuilds(latest.parsed, own) > 0;
  if (!newer) return null;
  const fixes = fixedAt(open, byId, server.productKey, latest.build);
  const unknown = server.suLevelKnown ? '' : ' (SU level unknown: if it is not installed yet)';
  const what = fixes.length > 0 ? `it fixes ${fixes.join(', ')}` : 'it fixes nothing in this catalog, but carries every later fix for this CU';
  return { kind: 'update', text: `Install the newest update of ${server.cu}${unknown}: ${describe(latest)}; ${what}.`, name: latest.name, build: latest.build, kb: latest.kb, fixes };
}

/** The move to a CU that still gets updates and whose newest update fixes the rest (the most of it; ties go to the newest CU). */
function cuAdvice(server: DetectResult, rest: AuditEntry[], byId: Map<string, Mitigation>, afterUpdate: boolean): Advice | null {
  if (server.support.state === 'product-ended') return null;
  const behind = server.support.state === 'cu-behind';
  if (rest.length === 0 && !behind) return null;
  let best: { entry: BuildEntry; fixes: string[] } | null = null;
  for (const cu of currentCus(server.productKey)) {
    if (cu === server.cu) continue;
    const entry = latestForCu(server.productKey, cu);
    if (entry === null) continue;
    const fixes = fixedAt(rest, byId, server.productKey, entry.build);
    if (best === null || fixes.length >= best.fixes.length) best = { entry, fixes };
  }
  if (best === null) return null;
  const left = rest.filter((e) => !best.fixes.includes(e.id)).map((e) => e.id);
  const what = best.fixes.length > 0 ? `it fixes ${best.fixes.join(', ')}` : 'it carries every fix since your CU\'s last update';
  const still = left.length > 0 ? `; still not fixed there: ${left.join(', ')}` : '';
  const why = behind ? `${server.cu ?? 'this CU'} gets no more updates` : `no update of ${server.cu ?? 'this CU'} fixes ${rest.map((e) => e.id).join(', ')}`;
  return {
    kind: 'cu',
    text: `${afterUpdate ? 'Then move' : 'Move'} to a supported CU (${why}): ${best.entry.cu} with its newest update, ${describe(best.entry)}; ${what}${still}.`,
    name: best.entry.name,
    build: best.entry.build,
    kb: best.entry.kb,
    fixes: best.fixes,
  };
}

/** EEMS is running but a mitigation it publishes for this CU is not in effect: it is not doing its job here. */
function eemsAdvice(server: DetectResult, entries: AuditEntry[]): Advice | null {
  if (server.eems.present !== true) return null;
  const missing = entries.filter((e) => EEMS_MITIGATIONS[e.id] !== undefined && APPLICABLE.has(e.status) && e.fixedBy !== null);
  if (missing.length === 0) return null;
  const ids = missing.map((e) => `${e.id} (EEMS ${EEMS_MITIGATIONS[e.id]})`).join(', ');
  const running = (server.eems.status ?? '').toLowerCase() === 'running';
  const command = 'Get-ExchangeServer $env:COMPUTERNAME | Format-List MitigationsEnabled, MitigationsApplied, MitigationsBlocked';
  const state = running ? 'is running' : `is present but ${(server.eems.status ?? 'in an unknown state').toLowerCase()}${server.eems.startType !== null ? ` (${server.eems.startType.toLowerCase()})` : ''}`;
  return {
    kind: 'eems',
    text: `EEMS (MSExchangeMitigation) ${state}, but its mitigation is not in effect for ${ids}: EEMS is not doing its job on this server. Check that it can reach its feed (https://officeclient.microsoft.com/getexchangemitigations, through the server's proxy) and whether the mitigation is blocked (MitigationsBlocked): ${command}`,
    command,
    fixes: missing.map((e) => e.id),
  };
}

/** The support state, when the CU or product gets no more updates. */
function supportAdvice(server: DetectResult): Advice | null {
  const support = server.support;
  if (support.state === 'current') return null;
  if (support.state === 'product-ended') {
    const to = newestProduct(server.productKey);
    return { kind: 'support', text: `${support.reason}. Move to a version that still gets updates${to !== null ? ` (${productName(to)})` : ''}.` };
  }
  return { kind: 'support', text: `${support.reason}.` };
}

/** The newest product that still gets updates, other than this one. */
function newestProduct(product: Product): Product | null {
  const others = PRODUCTS.filter((p) => p !== product && supportOf(p, currentCus(p).at(-1) ?? null, false).state === 'current');
  return others.at(-1) ?? null;
}

function describe(entry: BuildEntry): string {
  const kb = entry.kb ?? findExact(entry.parsed)?.kb ?? null;
  return `${entry.name} (${entry.build}${kb !== null ? `, ${kb}` : ''})`;
}
