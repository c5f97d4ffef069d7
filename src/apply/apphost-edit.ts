/**
 * exmit's changes to applicationHost.config text, as splices: rules go into the `<location>` of
 * their site path, outbound rules after their precondition, a global module entry is taken out;
 * removal takes out exactly exmit's own elements by name. Every other byte of the file stays.
 */
import { inputError } from '../errors.ts';
import { resolveConfigSource } from '../iis/config-source.ts';
import { APPLICATION_HOST_PATH } from '../iis/sites.ts';
import { parseXml, escapeAttribute, type XmlDocument, type XmlElement } from '../xml/document.ts';
import { childIndent, insertChild, removeElement, type Position } from '../xml/splice.ts';
import { inboundRuleElement, outboundElements, type IisElement } from './live-steps.ts';
import type { Change } from './changes.ts';
import type { LedgerResource } from './ledger.ts';

/** Largest configuration file edited (the engine's read limit). */
const MAX_CONFIG_BYTES = 32 * 1024 * 1024;

/** Parses applicationHost.config text for editing. */
export function parseApphost(text: string, file: string): XmlDocument {
  const doc = parseXml(text, file, { kind: 'configuration file', maxBytes: MAX_CONFIG_BYTES, allowCdata: true });
  if (doc.root.name !== 'configuration') throw inputError(`${file} line ${doc.root.line}: the root element is <${doc.root.name}>, expected <configuration>`);
  return doc;
}

/** XML text of an element, two-space indented, attributes in the given order. */
export function elementXml(el: IisElement, depth = 0): string {
  const pad = '  '.repeat(depth);
  const attrs = Object.entries(el.attributes)
    .map(([k, v]) => ` ${k}="${escapeAttribute(v)}"`)
    .join('');
  if (el.children.length === 0) return `${pad}<${el.name}${attrs} />`;
  return [`${pad}<${el.name}${attrs}>`, ...el.children.map((c) => elementXml(c, depth + 1)), `${pad}</${el.name}>`].join('\n');
}

const same = (a: string | undefined, b: string): boolean => a !== undefined && a.toLowerCase() === b.toLowerCase();

/** The `<location path=...>` a rule at `location` goes into: one that reaches child applications; null when there is none. */
function locationFor(doc: XmlDocument, location: string): XmlElement | null {
  return doc.root.children.find((c) => c.name === 'location' && same(c.attributes['path'], location) && (c.attributes['inheritInChildApplications'] ?? 'true').toLowerCase() !== 'false') ?? null;
}

/** Inserts `fragment` below `from` along `names`, creating what is missing in one splice; `position` places it among the existing children of the last element. */
function insertBelow(text: string, from: XmlElement, names: readonly string[], fragment: string, position: (parent: XmlElement) => Position, created: string[][]): string {
  let current = from;
  let i = 0;
  for (; i < names.length; i++) {
    const next = current.children.find((c) => c.name === names[i]);
    if (next === undefined) break;
    current = next;
    refuseKeptElsewhere(from, names.slice(0, i + 1), current);
  }
  if (i === names.length) return insertChild(text, current, fragment, position(current)).text;
  created.push(names.slice(0, i + 1));
  const missing = names.slice(i);
  const lines = fragment.split('\n');
  const open = missing.map((n, d) => `${'  '.repeat(d)}<${n}>`);
  const close = [...missing].reverse().map((n, d) => `${'  '.repeat(missing.length - 1 - d)}</${n}>`);
  const nested = [...open, ...lines.map((l) => '  '.repeat(missing.length) + l), ...close].join('\n');
  return insertChild(text, current, nested, 'last').text;
}

/** A section kept in another file (configSource) is refused before anything changes: exmit edits applicationHost.config only. */
function refuseKeptElsewhere(location: XmlElement, names: readonly string[], section: XmlElement): void {
  const source = section.attributes['configSource'];
  if (source === undefined) return;
  const resolved = resolveConfigSource(APPLICATION_HOST_PATH, source);
  const file = 'path' in resolved ? resolved.path : source;
  throw inputError(
    `${names.join('/')} of <location path="${location.attributes['path'] ?? ''}"> (applicationHost.config line ${section.line}) is kept in another file, ${file} (configSource="${source}"), and exmit does not edit such files: nothing was changed`,
    `Add the rule to ${source} by hand (exmit catalog show shows it), or move that section back into applicationHost.config and run exmit apply again.`,
  );
}

// Rules go first among the rules (an earlier rule with stopProcessing could shadow them), after a <clear/> (which would take them
// out) and after exmit's own rules already there, so that exmit's rules stay one block in the order they were applied.
function firstAfterClear(parent: XmlElement): Position {
  let anchor: XmlElement | null = null;
  for (const c of parent.children) {
    if (c.name === 'clear' || c.name === 'remove') anchor = c;
    else if (c.name === 'rule' && (c.attributes['name'] ?? '').toLowerCase().startsWith('exmit ')) anchor = c;
    else if (c.name === 'rule') break;
  }
  return anchor !== null ? { after: anchor } : 'first';
}

/** A container element exmit created to hold its rules: below `<location path=location>`, the names down to it (empty: the location itself). */
export interface CreatedContainer {
  location: string;
  path: string[];
}

/** The location element to write into, created at the end of `<configuration>` when no suitable one exists; returns the text and the parsed document. */
function withLocation(text: string, file: string, location: string, created: CreatedContainer[]): { text: string; doc: XmlDocument; loc: XmlElement } {
  let doc = parseApphost(text, file);
  let loc = locationFor(doc, location);
  if (loc === null) {
    created.push({ location, path: [] });
    const fragment = `<location path="${escapeAttribute(location)}">\n  <system.webServer />\n</location>`;
    text = insertChild(text, doc.root, fragment, 'last').text;
    doc = parseApphost(text, file);
    loc = locationFor(doc, location);
    if (loc === null) throw new Error(`could not create <location path="${location}">`);
  }
  return { text, doc, loc };
}

/** applicationHost.config text with one planned change made (rules and module removals; other kinds do not touch it); containers exmit had to create are added to `created`. */
export function applyToApphost(text: string, file: string, change: Change, created: CreatedContainer[] = []): string {
  const below: string[][] = [];
  const record = (location: string): void => {
    for (const path of below) if (!created.some((c) => c.location === location && (c.path.length === 0 || c.path.every((n, i) => path[i] === n)))) created.push({ location, path });
  };
  switch (change.kind) {
    case 'inbound-rule': {
      const { text: t, loc } = withLocation(text, file, change.location, created);
      const out = insertBelow(t, loc, ['system.webServer', 'rewrite', 'rules'], elementXml(inboundRuleElement(change.action)), firstAfterClear, below);
      record(change.location);
      return out;
    }
    case 'outbound-rule': {
      const { preCondition, rule } = outboundElements(change.action);
      const first = withLocation(text, file, change.location, created);
      let t = insertBelow(first.text, first.loc, ['system.webServer', 'rewrite', 'outboundRules', 'preConditions'], elementXml(preCondition), () => 'last', below);
      record(change.location);
      const again = withLocation(t, file, change.location, created);
      const outbound = again.loc.children.find((c) => c.name === 'system.webServer')?.children.find((c) => c.name === 'rewrite')?.children.find((c) => c.name === 'outboundRules');
      if (outbound === undefined) throw new Error('outboundRules vanished');
      const pre = outbound.children.find((c) => c.name === 'preConditions');
      const clear = [...outbound.children].reverse().find((c) => c.name === 'clear');
      const position: Position = clear !== undefined ? { after: clear } : pre !== undefined ? { after: pre } : 'first';
      t = insertChild(again.text, outbound, elementXml(rule), position).text;
      return t;
    }
    case 'remove-global-module': {
      const doc = parseApphost(text, file);
      const entry = globalModuleEntry(doc, change.name);
      if (entry === null) return text;
      return removeElement(text, entry).text;
    }
    default:
      return text;
  }
}

/** The `<add>` of a global module in system.webServer/globalModules at the server level, or null. */
export function globalModuleEntry(doc: XmlDocument, name: string): XmlElement | null {
  for (const ws of doc.root.children.filter((c) => c.name === 'system.webServer')) {
    for (const gm of ws.children.filter((c) => c.name === 'globalModules')) {
      const entry = gm.children.find((c) => c.name === 'add' && same(c.attributes['name'], name));
      if (entry !== undefined) return entry;
    }
  }
  return null;
}

/** The global module's entry as it stands, and the name of the entry before it (to put it back in its place). */
export function globalModuleOrigin(doc: XmlDocument, name: string): { xml: string; after: string | null } | null {
  const entry = globalModuleEntry(doc, name);
  if (entry === null || entry.parent === null) return null;
  const siblings = entry.parent.children;
  const before = siblings[siblings.indexOf(entry) - 1];
  return { xml: doc.text.slice(entry.start, entry.end), after: before?.attributes['name'] ?? null };
}

/** All rule and precondition elements named `name` in `<location path=location>` sections (what exmit wrote there). */
function namedElements(doc: XmlDocument, location: string, section: 'rules' | 'outboundRules' | 'preConditions', name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const loc of doc.root.children.filter((c) => c.name === 'location' && same(c.attributes['path'], location))) {
    for (const ws of loc.children.filter((c) => c.name === 'system.webServer')) {
      for (const rw of ws.children.filter((c) => c.name === 'rewrite')) {
        for (const sec of rw.children.filter((c) => c.name === (section === 'preConditions' ? 'outboundRules' : section))) {
          const holder = section === 'preConditions' ? sec.children.filter((c) => c.name === 'preConditions') : [sec];
          for (const h of holder) for (const el of h.children) if ((el.name === 'rule' || el.name === 'preCondition') && same(el.attributes['name'], name)) out.push(el);
        }
      }
    }
  }
  return out;
}

/** applicationHost.config text with a released resource taken out (exmit's rules by name) or put back (a global module), and whether anything was found to change. */
export function restoreInApphost(text: string, file: string, resource: LedgerResource): { text: string; found: boolean } {
  const removeAll = (t: string, section: 'rules' | 'outboundRules' | 'preConditions', location: string, name: string): { text: string; found: boolean } => {
    let found = false;
    for (;;) {
      const doc = parseApphost(t, file);
      const el = namedElements(doc, location, section, name)[0];
      if (el === undefined) return { text: t, found };
      t = removeElement(t, el).text;
      found = true;
    }
  };
  switch (resource.kind) {
    case 'inbound-rule':
      return removeAll(text, 'rules', resource.location, resource.name);
    case 'outbound-rule': {
      const rule = removeAll(text, 'outboundRules', resource.location, resource.name);
      const pre = removeAll(rule.text, 'preConditions', resource.location, resource.preCondition);
      return { text: pre.text, found: rule.found || pre.found };
    }
    case 'remove-global-module': {
      const doc = parseApphost(text, file);
      if (globalModuleEntry(doc, resource.name) !== null) return { text, found: false };
      const gm = doc.root.children.find((c) => c.name === 'system.webServer')?.children.find((c) => c.name === 'globalModules');
      if (gm === undefined) throw inputError(`${file}: no system.webServer/globalModules section to put ${resource.name} back into`);
      const afterName = resource.after;
      const after = afterName === null ? undefined : gm.children.find((c) => c.name === 'add' && same(c.attributes['name'], afterName));
      const xml = resource.xml ?? `<add name="${escapeAttribute(resource.name)}" image="${escapeAttribute(resource.image)}" />`;
      return { text: insertChild(text, gm, xml, after !== undefined ? { after } : 'last').text, found: true };
    }
    default:
      return { text, found: false };
  }
}

const CONTAINERS = new Set(['system.webServer', 'rewrite', 'rules', 'outboundRules', 'preConditions']);

function holdsOnlyContainers(el: XmlElement): boolean {
  return el.children.every((c) => CONTAINERS.has(c.name) && holdsOnlyContainers(c));
}

/** Takes out the containers exmit created that hold nothing any more; returns the text and the records still standing. */
export function removeEmptyCreated(text: string, file: string, created: readonly CreatedContainer[]): { text: string; remaining: CreatedContainer[] } {
  const remaining: CreatedContainer[] = [];
  // Deepest first, so that a created location goes after the containers exmit made inside it.
  for (const c of [...created].sort((a, b) => b.path.length - a.path.length)) {
    const doc = parseApphost(text, file);
    let el: XmlElement | undefined = doc.root.children.filter((l) => l.name === 'location' && same(l.attributes['path'], c.location)).reverse().find((l) => c.path.length > 0 || holdsOnlyContainers(l));
    for (const name of c.path) el = el?.children.find((x) => x.name === name);
    if (el === undefined) continue;
    if (holdsOnlyContainers(el)) text = removeElement(text, el).text;
    else remaining.push(c);
  }
  return { text, remaining };
}

/** Lower-case names of every rule and precondition anywhere in a configuration file (a new rule's name must exist nowhere on its path); `inRewrite` for a configSource file whose root is a rewrite section. */
export function ruleNamesIn(doc: XmlDocument, inRewrite = false): Set<string> {
  const names = new Set<string>();
  const walk = (el: XmlElement, inRewrite: boolean): void => {
    const rewrite = inRewrite || el.name === 'rewrite';
    if (rewrite && (el.name === 'rule' || el.name === 'preCondition' || (el.name === 'remove' && el.parent?.name !== 'globalModules')) && el.attributes['name'] !== undefined) names.add(el.attributes['name'].toLowerCase());
    for (const c of el.children) walk(c, rewrite);
  };
  walk(doc.root, inRewrite);
  return names;
}

/** The indentation used for children of an element (exported for tests of the file's own style). */
export { childIndent };
