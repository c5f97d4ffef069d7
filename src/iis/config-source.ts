/**
 * Sections kept in another file: IIS reads `<rules configSource="rewriteRules.config" />` from the
 * named file, whose root element is the section itself. The path is relative to the folder of the
 * file that holds the attribute and must stay inside it; anything else is a configuration error.
 */
import { ExmitError } from '../errors.ts';
import { parseXml, type XmlDocument, type XmlElement } from '../xml/document.ts';
import { MAX_CONFIG_BYTES, type ConfigDocument } from './config-xml.ts';

/** The sections below system.webServer whose configSource exmit follows: URL Rewrite's and the module lists. */
export const CONFIG_SOURCE_SECTIONS: readonly (readonly string[])[] = [
  ['rewrite', 'rules'],
  ['rewrite', 'globalRules'],
  ['rewrite', 'outboundRules'],
  ['rewrite', 'rewriteMaps'],
  ['modules'],
  ['globalModules'],
];

/** Sections under system.webServer/rewrite (their files hold rules and preconditions). */
export const REWRITE_SECTIONS: ReadonlySet<string> = new Set(['rules', 'globalRules', 'outboundRules', 'rewriteMaps']);

/** An element with a configSource attribute, and the Windows path it names (or why IIS refuses it). */
export interface ConfigSourceRef {
  element: XmlElement;
  /** The file that holds the attribute (Windows path). */
  holder: string;
  /** The attribute as written. */
  value: string;
  resolved: { path: string } | { problem: string };
}

/** The texts of configSource files by configKey (lower-case Windows path); null for a file that does not exist. */
export type ConfigSources = ReadonlyMap<string, string | null>;

/** A section as IIS reads it: the element itself, or the root of the file its configSource names. */
export type SectionSource = { element: XmlElement; file: string } | { problem: string };

/** Resolves a configSource value against the folder of `holder`: only a relative path inside that folder (no "..", no drive, no leading slash, no stream or wildcard character). */
export function resolveConfigSource(holder: string, value: string): { path: string } | { problem: string } {
  const trimmed = value.trim();
  if (trimmed === '') return { problem: 'configSource is empty' };
  if (/^[A-Za-z]:/.test(trimmed) || /^[\\/]/.test(trimmed)) return { problem: `configSource "${value}" is not a path relative to the folder of ${holder} (IIS refuses rooted paths)` };
  const segments = trimmed.split(/[\\/]/).filter((s) => s !== '' && s !== '.');
  if (segments.some((s) => /^\.{2,}$/.test(s.trim()) || s.trim() === '')) return { problem: `configSource "${value}" leaves the folder of ${holder} (IIS refuses ".." in it)` };
  if (segments.some((s) => /[:*?"<>|\x00-\x1f]/.test(s))) return { problem: `configSource "${value}" has a character Windows does not allow in a file name` };
  if (segments.length === 0) return { problem: `configSource "${value}" names no file` };
  const folder = holder.replace(/[\\/][^\\/]*$/, '');
  return { path: [folder, ...segments].join('\\') };
}

/** Every element of the sections in CONFIG_SOURCE_SECTIONS with a configSource attribute, at the root's system.webServer and in its `<location>` elements. */
export function configSourceRefs(doc: ConfigDocument): ConfigSourceRef[] {
  const out: ConfigSourceRef[] = [];
  const groups = [
    ...doc.root.children.filter((c) => c.name === 'system.webServer'),
    ...doc.root.children.filter((c) => c.name === 'location').flatMap((l) => l.children.filter((c) => c.name === 'system.webServer')),
  ];
  for (const group of groups) {
    for (const path of CONFIG_SOURCE_SECTIONS) {
      let current = [group];
      for (const name of path) current = current.flatMap((c) => c.children.filter((x) => x.name === name));
      for (const element of current) {
        const value = element.attributes.configSource;
        if (value === undefined) continue;
        out.push({ element, holder: doc.file, value, resolved: resolveConfigSource(doc.file, value) });
      }
    }
  }
  return out;
}

/** Parses a configSource file's text strictly (its root is the section, not `<configuration>`). */
export function parseSectionFile(text: string, file: string): XmlDocument {
  return parseXml(text, file, { kind: 'configuration file', maxBytes: MAX_CONFIG_BYTES, allowCdata: true });
}

/** Reads configSource sections for one merge, parsing each file once. */
export class SectionReader {
  private readonly sources: ConfigSources;
  private readonly parsed = new Map<string, XmlDocument | ExmitError>();

  constructor(sources: ConfigSources) {
    this.sources = sources;
  }

  /** The section `element` of `holder` as IIS reads it: itself without configSource, else the named file's root; a problem names both files. */
  read(element: XmlElement, holder: string): SectionSource {
    const value = element.attributes.configSource;
    if (value === undefined) return { element, file: holder };
    const where = `configSource="${value}" of <${element.name}>`;
    if (element.children.length > 0) return { problem: `${where} has child elements beside it (IIS refuses a section with both)` };
    const resolved = resolveConfigSource(holder, value);
    if ('problem' in resolved) return resolved;
    const key = resolved.path.toLowerCase();
    if (!this.sources.has(key)) return { problem: `${where}: ${resolved.path} was not read` };
    const text = this.sources.get(key);
    if (text === null || text === undefined) return { problem: `${where}: ${resolved.path} does not exist` };
    let doc = this.parsed.get(key);
    if (doc === undefined) {
      try {
        doc = parseSectionFile(text, resolved.path);
      } catch (error) {
        if (!(error instanceof ExmitError)) throw error;
        doc = error;
      }
      this.parsed.set(key, doc);
    }
    if (doc instanceof ExmitError) return { problem: `${where}: ${doc.message}` };
    if (doc.root.name !== element.name) return { problem: `${where}: the root element of ${resolved.path} is <${doc.root.name}>, expected <${element.name}>` };
    return { element: doc.root, file: resolved.path };
  }
}
