/** The effective URL Rewrite configuration for a site and URL path, merged as IIS merges applicationHost.config and the web.config files down the path. */
import { childrenNamed, parseConfigXml, type ConfigDocument, type XmlElement } from './config-xml.ts';
import { SectionReader, type ConfigSources } from './config-source.ts';
import {
  APPLICATION_HOST_PATH,
  configKey,
  configLevelsFor,
  findSite,
  normalizeUrlPath,
  readGlobalModules,
  urlPathOnly,
  type ConfigLevel,
} from './sites.ts';

/** Where a rule or section was defined: the file, the `<location path>` as written (null outside a location) and the line. */
export interface Origin {
  file: string;
  location: string | null;
  line: number;
}

/** A reference to one rule, for verdicts and traces. */
export interface RuleRef {
  name: string;
  direction: 'inbound' | 'outbound';
  /** True for system.webServer/rewrite/globalRules. */
  global: boolean;
  origin: Origin;
}

/** URL Rewrite pattern syntaxes. */
export type PatternSyntax = 'ECMAScript' | 'Wildcard' | 'ExactMatch';

/** A rule or precondition condition with schema defaults applied. */
export interface EffectiveCondition {
  input: string;
  pattern: string;
  negate: boolean;
  ignoreCase: boolean;
  matchType: 'Pattern' | 'IsFile' | 'IsDirectory';
  line: number;
}

/** A rule's `<conditions>` element with defaults applied. */
export interface ConditionSet {
  logicalGrouping: 'MatchAll' | 'MatchAny';
  trackAllCaptures: boolean;
  items: EffectiveCondition[];
}

/** An inbound rule's action with defaults applied; attributes not listed here are kept in `attributes`. */
export interface InboundAction {
  /** "None", "Rewrite", "Redirect", "CustomResponse", "AbortRequest" (as IIS spells them). */
  type: string;
  url: string;
  appendQueryString: boolean;
  statusCode: number | null;
  attributes: Record<string, string>;
}

/** An effective inbound rule (rules or globalRules), with schema defaults applied. */
export interface InboundRule {
  ref: RuleRef;
  name: string;
  enabled: boolean;
  stopProcessing: boolean;
  patternSyntax: PatternSyntax;
  match: { url: string; negate: boolean; ignoreCase: boolean };
  conditions: ConditionSet;
  action: InboundAction;
  /** URL path of the directory where the rule is defined ("/" for the site root): `<match url>` sees the path relative to it. */
  baseUrlPath: string;
}

/** An effective outbound rule, with schema defaults applied. */
export interface OutboundRule {
  ref: RuleRef;
  name: string;
  enabled: boolean;
  stopProcessing: boolean;
  patternSyntax: PatternSyntax;
  preCondition: string | null;
  match: { serverVariable: string | null; filterByTags: string | null; pattern: string; negate: boolean; ignoreCase: boolean };
  conditions: ConditionSet;
  action: { type: string; value: string };
  baseUrlPath: string;
}

/** An effective outbound precondition. */
export interface PreCondition {
  name: string;
  logicalGrouping: 'MatchAll' | 'MatchAny';
  patternSyntax: PatternSyntax;
  conditions: EffectiveCondition[];
  origin: Origin;
}

/** Something in the configuration that IIS would reject (HTTP 500.19) or that the model cannot read. */
export interface ConfigProblem {
  message: string;
  origin: Origin;
}

/** A configuration section with URL Rewrite content that exists on the path but does not reach the URL, and why. */
export interface NotReaching {
  origin: Origin;
  reason: string;
}

/** The effective URL Rewrite configuration for one site and URL path. */
export interface EffectiveRewrite {
  site: string;
  urlPath: string;
  /** globalRules first, then distributed rules, in the order IIS evaluates them. */
  inboundRules: InboundRule[];
  outboundRules: OutboundRule[];
  preConditions: PreCondition[];
  /** URL Rewrite runs at this path: RewriteModule is a registered global module and in the effective system.webServer/modules. */
  rewriteModuleActive: boolean;
  /** Why the module is not active (null when it is). */
  rewriteModuleNote: string | null;
  /** The configuration levels from the site root to the URL. */
  levels: ConfigLevel[];
  /** Windows paths of web.config files that apply and were present. */
  configFiles: string[];
  /** Windows paths that apply but were not in `webConfigs` at all (neither text nor null): the caller did not read them. */
  unread: string[];
  problems: ConfigProblem[];
  notReaching: NotReaching[];
}

/** What effectiveRewrite needs: the applicationHost.config (text or parsed), the web.config texts by lower-case Windows path (null: no such file), the site, the URL and the environment. */
export interface EffectiveRewriteInput {
  apphost: string | ConfigDocument;
  /** Path used in messages for apphost text (default C:\Windows\System32\inetsrv\config\applicationHost.config). */
  apphostPath?: string;
  webConfigs: Map<string, string | null>;
  site: string;
  /** URL path as sent; a query string is ignored. */
  urlPath: string;
  env?: Record<string, string>;
  /** Texts of the files named by configSource attributes, by lower-case Windows path (null: no such file). */
  configSources?: ConfigSources;
}

interface Contribution {
  section: XmlElement;
  origin: Origin;
  /** Site URL path the section applies at; null for the server level. */
  level: string | null;
  /** The level's index among ConfigLevel[]; -1 for the server level. */
  levelIndex: number;
  inheritInChildApplications: boolean;
  fromApphost: boolean;
}

interface ModuleEntry {
  name: string;
  origin: Origin;
}

/** Merges applicationHost.config and the web.config files down the path into the URL Rewrite configuration IIS applies to `urlPath` of `site`. Throws inputError for a configuration file that is not well-formed. */
export function effectiveRewrite(input: EffectiveRewriteInput): EffectiveRewrite {
  const env = input.env ?? {};
  const apphost = typeof input.apphost === 'string' ? parseConfigXml(input.apphost, input.apphostPath ?? APPLICATION_HOST_PATH) : input.apphost;
  const site = findSite(apphost, input.site);
  const urlPath = urlPathOnly(input.urlPath);
  const levels = configLevelsFor(site, urlPath, env);
  const problems: ConfigProblem[] = [];
  const notReaching: NotReaching[] = [];
  const configFiles: string[] = [];
  const unread: string[] = [];

  const webDocs = new Map<number, ConfigDocument>();
  levels.forEach((level, i) => {
    if (level.webConfigPath === null) return;
    const key = configKey(level.webConfigPath);
    if (!input.webConfigs.has(key)) {
      unread.push(level.webConfigPath);
      return;
    }
    const text = input.webConfigs.get(key);
    if (text === null || text === undefined) return;
    webDocs.set(i, parseConfigXml(text, level.webConfigPath));
    configFiles.push(level.webConfigPath);
  });

  const contributions = collectContributions(apphost, site.name, levels, webDocs);
  const sections = new SectionReader(input.configSources ?? new Map());

  const inbound: InboundRule[] = [];
  const globalRules: InboundRule[] = [];
  const outbound: OutboundRule[] = [];
  const preConditions: PreCondition[] = [];
  const modules: ModuleEntry[] = [];
  let moduleRemoval: Origin | null = null;

  for (const c of contributions) {
    const blocker = childApplicationBetween(c, levels);
    if (blocker !== null) {
      if (hasRewriteContent(c.section)) {
        notReaching.push({
          origin: c.origin,
          reason: `inheritInChildApplications="false": does not reach the child application ${blocker}`,
        });
      }
      continue;
    }
    const base = c.level === null ? '/' : baseFor(levels, c.levelIndex);
    // A section kept in another file (configSource) is read from that file; its rules' origins name it.
    const sectionOf = (el: XmlElement): { section: XmlElement; origin: Origin } | null => {
      const found = sections.read(el, c.origin.file);
      if ('problem' in found) {
        problems.push({ message: found.problem, origin: { ...c.origin, line: el.line } });
        return null;
      }
      return { section: found.element, origin: { ...c.origin, file: found.file, line: found.element.line } };
    };
    for (const child of c.section.children) {
      if (child.name === 'modules') {
        const read = sectionOf(child);
        if (read === null) continue;
        const removed = mergeModules(modules, read.section, read.origin);
        if (removed !== null) moduleRemoval = removed;
      } else if (child.name === 'rewrite') {
        for (const element of child.children) {
          if (element.name !== 'rules' && element.name !== 'globalRules' && element.name !== 'outboundRules' && element.name !== 'rewriteMaps') continue;
          const read = sectionOf(element);
          if (read === null) continue;
          const { section: part, origin } = read;
          const at = { ...origin, line: part.line };
          if (part.name === 'rules') {
            mergeCollection(inbound, part, 'rule', (el) => readInbound(el, origin, base, false, problems), problems, at);
          } else if (part.name === 'globalRules') {
            if (c.fromApphost && c.level === null) {
              mergeCollection(globalRules, part, 'rule', (el) => readInbound(el, origin, '/', true, problems), problems, at);
            } else {
              problems.push({ message: 'globalRules may only be set at the server level of applicationHost.config', origin: at });
            }
          } else if (part.name === 'outboundRules') {
            for (const pcs of childrenNamed(part, 'preConditions')) {
              mergeCollection(preConditions, pcs, 'preCondition', (el) => readPreCondition(el, origin, problems), problems, {
                ...origin,
                line: pcs.line,
              });
            }
            mergeCollection(outbound, part, 'rule', (el) => readOutbound(el, origin, base, problems), problems, at);
          }
        }
      }
    }
  }

  const registered = readGlobalModules(apphost, (el) => {
    const found = sections.read(el, apphost.file);
    if ('problem' in found) {
      problems.push({ message: found.problem, origin: { file: apphost.file, location: null, line: el.line } });
      return null;
    }
    return found.element;
  }).some((m) => m.name.toLowerCase() === 'rewritemodule');
  const enabled = modules.some((m) => m.name.toLowerCase() === 'rewritemodule');
  let rewriteModuleNote: string | null = null;
  if (!registered) rewriteModuleNote = `RewriteModule is not registered in system.webServer/globalModules of ${apphost.file}`;
  else if (!enabled) {
    rewriteModuleNote =
      moduleRemoval === null
        ? `RewriteModule is not in system.webServer/modules for ${site.name}${urlPath}`
        : `RewriteModule is removed from system.webServer/modules in ${describeOrigin(moduleRemoval)}`;
  }

  return {
    site: site.name,
    urlPath,
    inboundRules: [...globalRules, ...inbound],
    outboundRules: outbound,
    preConditions,
    rewriteModuleActive: registered && enabled,
    rewriteModuleNote,
    levels,
    configFiles,
    unread,
    problems,
    notReaching,
  };
}

/** "C:\...\web.config line 12 (location "Default Web Site")": an origin as a message fragment. */
export function describeOrigin(origin: Origin): string {
  return `${origin.file} line ${origin.line}${origin.location === null ? '' : ` (location "${origin.location}")`}`;
}

function collectContributions(apphost: ConfigDocument, siteName: string, levels: ConfigLevel[], webDocs: Map<number, ConfigDocument>): Contribution[] {
  const out: Contribution[] = [];
  const lowerSite = siteName.toLowerCase();
  const apphostLocations = childrenNamed(apphost.root, 'location').map((loc) => {
    const raw = loc.attributes.path ?? '';
    const trimmed = raw.replace(/^[/\\]+|[/\\]+$/g, '');
    if (trimmed === '' || trimmed === '.') return { loc, site: null as string | null, path: null as string | null };
    const slash = trimmed.indexOf('/');
    const locSite = slash < 0 ? trimmed : trimmed.slice(0, slash);
    return { loc, site: locSite.toLowerCase(), path: normalizeUrlPath(slash < 0 ? '/' : trimmed.slice(slash)).toLowerCase() };
  });

  // Server level: the root of applicationHost.config and its location sections without a path, in document order.
  for (const child of apphost.root.children) {
    if (child.name === 'system.webServer') out.push(contribution(child, apphost.file, null, null, -1, true, true));
    if (child.name === 'location') {
      const entry = apphostLocations.find((l) => l.loc === child);
      if (entry !== undefined && entry.site === null) pushLocation(out, child, apphost.file, null, -1, true);
    }
  }

  levels.forEach((level, i) => {
    const lowerLevel = level.urlPath.toLowerCase();
    for (const l of apphostLocations) {
      if (l.site === lowerSite && l.path === lowerLevel) pushLocation(out, l.loc, apphost.file, level.urlPath, i, true);
    }
    // Location sections of web.config files higher up that name this level.
    for (let a = 0; a < i; a++) {
      const doc = webDocs.get(a);
      const parent = levels[a];
      if (doc === undefined || parent === undefined) continue;
      for (const loc of childrenNamed(doc.root, 'location')) {
        const rel = (loc.attributes.path ?? '').replace(/^[/\\]+|[/\\]+$/g, '');
        if (rel === '' || rel === '.') continue;
        if (normalizeUrlPath(`${parent.urlPath}/${rel}`).toLowerCase() === lowerLevel) pushLocation(out, loc, doc.file, level.urlPath, i, false);
      }
    }
    const own = webDocs.get(i);
    if (own !== undefined) {
      for (const child of own.root.children) {
        if (child.name === 'system.webServer') out.push(contribution(child, own.file, null, level.urlPath, i, true, false));
        if (child.name === 'location') {
          const rel = (child.attributes.path ?? '').replace(/^[/\\]+|[/\\]+$/g, '');
          if (rel === '' || rel === '.') pushLocation(out, child, own.file, level.urlPath, i, false);
        }
      }
    }
  });
  return out;
}

function pushLocation(out: Contribution[], loc: XmlElement, file: string, level: string | null, levelIndex: number, fromApphost: boolean): void {
  const inherit = (loc.attributes.inheritInChildApplications ?? 'true').toLowerCase() !== 'false';
  for (const section of childrenNamed(loc, 'system.webServer')) {
    out.push({
      section,
      origin: { file, location: loc.attributes.path ?? '', line: section.line },
      level,
      levelIndex,
      inheritInChildApplications: inherit,
      fromApphost,
    });
  }
}

function contribution(
  section: XmlElement,
  file: string,
  location: string | null,
  level: string | null,
  levelIndex: number,
  inherit: boolean,
  fromApphost: boolean,
): Contribution {
  return { section, origin: { file, location, line: section.line }, level, levelIndex, inheritInChildApplications: inherit, fromApphost };
}

// A section with inheritInChildApplications="false" stops at the first application root below its own level.
function childApplicationBetween(c: Contribution, levels: ConfigLevel[]): string | null {
  if (c.inheritInChildApplications) return null;
  for (let i = c.levelIndex + 1; i < levels.length; i++) {
    const level = levels[i];
    if (level?.applicationRoot) return level.urlPath;
  }
  return null;
}

function baseFor(levels: ConfigLevel[], index: number): string {
  const level = levels[index];
  if (level === undefined) return '/';
  if (level.webConfigPath !== null || index === 0) return level.urlPath;
  return levels[index - 1]?.urlPath ?? '/';
}

function hasRewriteContent(section: XmlElement): boolean {
  return section.children.some(
    (c) =>
      c.name === 'rewrite' ||
      (c.name === 'modules' && c.children.some((m) => m.name === 'clear' || (m.name === 'remove' && m.attributes.name?.toLowerCase() === 'rewritemodule'))),
  );
}

function mergeModules(modules: ModuleEntry[], el: XmlElement, origin: Origin): Origin | null {
  let removedRewrite: Origin | null = null;
  for (const entry of el.children) {
    const at = { ...origin, line: entry.line };
    const name = entry.attributes.name ?? '';
    if (entry.name === 'clear') {
      if (modules.some((m) => m.name.toLowerCase() === 'rewritemodule')) removedRewrite = at;
      modules.length = 0;
    } else if (entry.name === 'remove') {
      if (name.toLowerCase() === 'rewritemodule') removedRewrite = at;
      const i = modules.findIndex((m) => m.name.toLowerCase() === name.toLowerCase());
      if (i >= 0) modules.splice(i, 1);
    } else if (entry.name === 'add') {
      if (!modules.some((m) => m.name.toLowerCase() === name.toLowerCase())) modules.push({ name, origin: at });
    }
  }
  return removedRewrite;
}

function mergeCollection<T extends { name: string }>(
  list: T[],
  el: XmlElement,
  itemName: string,
  read: (item: XmlElement) => T,
  problems: ConfigProblem[],
  origin: Origin,
): void {
  for (const entry of el.children) {
    const at = { ...origin, line: entry.line };
    if (entry.name === 'clear') list.length = 0;
    else if (entry.name === 'remove') {
      const name = (entry.attributes.name ?? '').toLowerCase();
      const i = list.findIndex((r) => r.name.toLowerCase() === name);
      if (i >= 0) list.splice(i, 1);
    } else if (entry.name === itemName) {
      const item = read(entry);
      if (list.some((r) => r.name.toLowerCase() === item.name.toLowerCase())) {
        problems.push({ message: `duplicate ${itemName} name "${item.name}" (IIS answers HTTP 500.19 for the whole path)`, origin: at });
      } else {
        list.push(item);
      }
    }
  }
}

function readInbound(el: XmlElement, origin: Origin, base: string, global: boolean, problems: ConfigProblem[]): InboundRule {
  const at = { ...origin, line: el.line };
  const name = el.attributes.name ?? '';
  const match = childrenNamed(el, 'match')[0];
  const action = childrenNamed(el, 'action')[0];
  const actionAttrs = action?.attributes ?? {};
  const status = actionAttrs.statusCode;
  return {
    ref: { name, direction: 'inbound', global, origin: at },
    name,
    enabled: bool(el, 'enabled', true, at, problems),
    stopProcessing: bool(el, 'stopProcessing', false, at, problems),
    patternSyntax: syntax(el.attributes.patternSyntax, at, problems),
    match: {
      url: match?.attributes.url ?? '',
      negate: match === undefined ? false : bool(match, 'negate', false, at, problems),
      ignoreCase: match === undefined ? true : bool(match, 'ignoreCase', true, at, problems),
    },
    conditions: readConditions(childrenNamed(el, 'conditions')[0], at, problems),
    action: {
      type: canonicalAction(actionAttrs.type ?? 'None'),
      url: actionAttrs.url ?? '',
      appendQueryString: action === undefined ? true : bool(action, 'appendQueryString', true, at, problems),
      statusCode: status === undefined || !/^\d+$/.test(status) ? null : Number(status),
      attributes: { ...actionAttrs },
    },
    baseUrlPath: base,
  };
}

function readOutbound(el: XmlElement, origin: Origin, base: string, problems: ConfigProblem[]): OutboundRule {
  const at = { ...origin, line: el.line };
  const name = el.attributes.name ?? '';
  const match = childrenNamed(el, 'match')[0];
  const action = childrenNamed(el, 'action')[0];
  const pre = el.attributes.preCondition;
  return {
    ref: { name, direction: 'outbound', global: false, origin: at },
    name,
    enabled: bool(el, 'enabled', true, at, problems),
    stopProcessing: bool(el, 'stopProcessing', false, at, problems),
    patternSyntax: syntax(el.attributes.patternSyntax, at, problems),
    preCondition: pre === undefined || pre === '' ? null : pre,
    match: {
      serverVariable: match?.attributes.serverVariable || null,
      filterByTags: match?.attributes.filterByTags || null,
      pattern: match?.attributes.pattern ?? '',
      negate: match === undefined ? false : bool(match, 'negate', false, at, problems),
      ignoreCase: match === undefined ? true : bool(match, 'ignoreCase', true, at, problems),
    },
    conditions: readConditions(childrenNamed(el, 'conditions')[0], at, problems),
    action: {
      type: canonicalAction(action?.attributes.type ?? 'None'),
      value: action?.attributes.value ?? '',
    },
    baseUrlPath: base,
  };
}

function readPreCondition(el: XmlElement, origin: Origin, problems: ConfigProblem[]): PreCondition {
  const at = { ...origin, line: el.line };
  return {
    name: el.attributes.name ?? '',
    logicalGrouping: grouping(el.attributes.logicalGrouping, at, problems),
    patternSyntax: syntax(el.attributes.patternSyntax, at, problems),
    conditions: childrenNamed(el, 'add').map((c) => readCondition(c, at, problems)),
    origin: at,
  };
}

function readConditions(el: XmlElement | undefined, origin: Origin, problems: ConfigProblem[]): ConditionSet {
  if (el === undefined) return { logicalGrouping: 'MatchAll', trackAllCaptures: false, items: [] };
  return {
    logicalGrouping: grouping(el.attributes.logicalGrouping, origin, problems),
    trackAllCaptures: bool(el, 'trackAllCaptures', false, origin, problems),
    items: childrenNamed(el, 'add').map((c) => readCondition(c, origin, problems)),
  };
}

function readCondition(el: XmlElement, origin: Origin, problems: ConfigProblem[]): EffectiveCondition {
  const at = { ...origin, line: el.line };
  const raw = (el.attributes.matchType ?? 'Pattern').toLowerCase();
  const matchType = raw === 'isfile' ? 'IsFile' : raw === 'isdirectory' ? 'IsDirectory' : 'Pattern';
  if (raw !== 'pattern' && raw !== 'isfile' && raw !== 'isdirectory') {
    problems.push({ message: `unknown matchType "${el.attributes.matchType ?? ''}"`, origin: at });
  }
  return {
    input: el.attributes.input ?? '',
    pattern: el.attributes.pattern ?? '',
    negate: bool(el, 'negate', false, at, problems),
    ignoreCase: bool(el, 'ignoreCase', true, at, problems),
    matchType,
    line: el.line,
  };
}

function bool(el: XmlElement, attr: string, fallback: boolean, origin: Origin, problems: ConfigProblem[]): boolean {
  const v = el.attributes[attr];
  if (v === undefined) return fallback;
  const lower = v.trim().toLowerCase();
  if (lower === 'true') return true;
  if (lower === 'false') return false;
  problems.push({ message: `${attr}="${v}" is not true or false`, origin: { ...origin, line: el.line } });
  return fallback;
}

function syntax(v: string | undefined, origin: Origin, problems: ConfigProblem[]): PatternSyntax {
  const lower = (v ?? 'ECMAScript').toLowerCase();
  if (lower === 'wildcard') return 'Wildcard';
  if (lower === 'exactmatch') return 'ExactMatch';
  if (lower !== 'ecmascript') problems.push({ message: `unknown patternSyntax "${v ?? ''}"`, origin });
  return 'ECMAScript';
}

function grouping(v: string | undefined, origin: Origin, problems: ConfigProblem[]): 'MatchAll' | 'MatchAny' {
  const lower = (v ?? 'MatchAll').toLowerCase();
  if (lower === 'matchany') return 'MatchAny';
  if (lower !== 'matchall') problems.push({ message: `unknown logicalGrouping "${v ?? ''}"`, origin });
  return 'MatchAll';
}

const ACTIONS = ['None', 'Rewrite', 'Redirect', 'CustomResponse', 'AbortRequest'];

function canonicalAction(type: string): string {
  return ACTIONS.find((a) => a.toLowerCase() === type.toLowerCase()) ?? type;
}
