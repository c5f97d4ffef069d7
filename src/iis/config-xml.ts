/** Strict parse of applicationHost.config and web.config text through the XML front end (src/xml/document.ts). */
import { parseXml, xmlError, type XmlDocument, type XmlElement } from '../xml/document.ts';
import { inputError } from '../errors.ts';

export type { XmlElement } from '../xml/document.ts';

/** A parsed configuration file: the path it was read from (for messages), its text and its `<configuration>` root. */
export interface ConfigDocument extends XmlDocument {}

/** Largest configuration size accepted, in UTF-8 bytes; real applicationHost.config files are well under 1 MB. */
export const MAX_CONFIG_BYTES = 32 * 1024 * 1024;

/** The same limit under its first name (it was counted in characters). */
export const MAX_CONFIG_CHARS = MAX_CONFIG_BYTES;

/** How many parsed files parseConfigXml keeps: a run judges the same few files once per probe. */
const PARSED_KEPT = 16;
const parsed = new Map<string, ConfigDocument>();

/**
 * Parses a configuration file's text strictly; throws inputError naming the file and line when it is
 * not well-formed, has a DOCTYPE, or its root is not `<configuration>`. The same file and text give
 * the same document (kept for the run: nothing changes a parsed document).
 */
export function parseConfigXml(text: string, file: string): ConfigDocument {
  const key = `${file}\u0000${text}`;
  const known = parsed.get(key);
  if (known !== undefined) return known;
  const doc = parseFresh(text, file);
  if (parsed.size >= PARSED_KEPT) parsed.delete(parsed.keys().next().value as string);
  parsed.set(key, doc);
  return doc;
}

function parseFresh(text: string, file: string): ConfigDocument {
  // An empty file is no configuration to IIS but an error (HTTP 500.19): say so rather than "line 1".
  if (text.trim() === '') throw inputError(`${file}: the file is empty, and IIS refuses an empty configuration file (HTTP 500.19) as it refuses any file that is not XML`, 'Restore the file from a backup, or delete it if it should not exist.');
  const doc = parseXml(text, file, { kind: 'configuration file', maxBytes: MAX_CONFIG_BYTES, allowCdata: true });
  if (doc.root.name !== 'configuration') {
    throw xmlError(doc, doc.root.start, `the root element is <${doc.root.name}>, expected <configuration>`);
  }
  return doc;
}

/** The child elements of `el` named `name`, in document order. */
export function childrenNamed(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/** Follows a path of element names from `el`, collecting every match at each step (`descend(root, 'system.webServer', 'rewrite', 'rules')`). */
export function descend(el: XmlElement, ...names: string[]): XmlElement[] {
  let current = [el];
  for (const name of names) {
    current = current.flatMap((c) => childrenNamed(c, name));
  }
  return current;
}
