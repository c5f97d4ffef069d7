/** Strict parse of applicationHost.config and web.config text into a light element tree with document order and line numbers. */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { inputError } from '../errors.ts';

/** One XML element: name, attributes (entity references decoded), child elements in document order, and its 1-based line. */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  line: number;
}

/** A parsed configuration file: the path it was read from (for messages) and its `<configuration>` root. */
export interface ConfigDocument {
  file: string;
  root: XmlElement;
}

/** Largest configuration text accepted (characters); real applicationHost.config files are well under 1 MB. */
export const MAX_CONFIG_CHARS = 32 * 1024 * 1024;

const ATTRS = ':@';

// preserveOrder keeps every child in an array in document order, which is what isArray would give for each repeatable element.
const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: false,
  parseAttributeValue: false,
  parseTagValue: false,
  processEntities: false,
  htmlEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  commentPropName: false,
  captureMetaData: true,
  trimValues: true,
});

const META = XMLParser.getMetaDataSymbol() as unknown as symbol;

/** Parses a configuration file's text strictly; throws inputError naming the file and line when it is not well-formed, has a DOCTYPE, or its root is not `<configuration>`. */
export function parseConfigXml(text: string, file: string): ConfigDocument {
  if (text.length > MAX_CONFIG_CHARS) {
    throw inputError(`${file}: larger than ${MAX_CONFIG_CHARS} characters; refusing to parse it`);
  }
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const lines = lineStarts(body);

  const validation = XMLValidator.validate(body, { allowBooleanAttributes: false });
  if (validation !== true) {
    throw inputError(`${file} line ${validation.err.line}: not well-formed: ${validation.err.msg}`);
  }
  const doctype = blankComments(body).search(/<!DOCTYPE/i);
  if (doctype >= 0) {
    throw inputError(`${file} line ${lineOf(lines, doctype)}: a DOCTYPE is not allowed in a configuration file`);
  }

  let parsed: unknown;
  try {
    parsed = parser.parse(body);
  } catch (err) {
    throw inputError(`${file}: not well-formed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const top = toElements(parsed, lines);
  const root = top[0];
  if (top.length !== 1 || root === undefined) {
    throw inputError(`${file}: expected exactly one root element <configuration>`);
  }
  if (root.name !== 'configuration') {
    throw inputError(`${file} line ${root.line}: the root element is <${root.name}>, expected <configuration>`);
  }
  return { file, root };
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

function toElements(nodes: unknown, lines: number[]): XmlElement[] {
  if (!Array.isArray(nodes)) return [];
  const out: XmlElement[] = [];
  for (const node of nodes as Record<string | symbol, unknown>[]) {
    const name = Object.keys(node).find((k) => k !== ATTRS && k !== '#text');
    if (name === undefined) continue;
    const rawAttrs = (node[ATTRS] ?? {}) as Record<string, unknown>;
    const attributes: Record<string, string> = {};
    for (const [k, v] of Object.entries(rawAttrs)) attributes[k] = decodeEntities(String(v));
    const meta = node[META] as { startIndex?: number } | undefined;
    out.push({
      name,
      attributes,
      children: toElements(node[name], lines),
      line: meta?.startIndex === undefined ? 0 : lineOf(lines, meta.startIndex),
    });
  }
  return out;
}

// Entity expansion is off in the parser (no DTD entities); the five predefined ones and character references are plain XML and are decoded here.
function decodeEntities(value: string): string {
  return value.replace(/&(lt|gt|amp|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/g, (whole, ref: string) => {
    switch (ref) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
    }
    const code = ref.startsWith('#x') ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
    return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
  });
}

function blankComments(text: string): string {
  return text.replace(/<!--[\s\S]*?-->/g, (c) => c.replace(/[^\r\n]/g, ' '));
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 10 || (ch === 13 && text.charCodeAt(i + 1) !== 10)) starts.push(i + 1);
  }
  return starts;
}

function lineOf(starts: number[], index: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((starts[mid] ?? 0) <= index) lo = mid;
    else hi = mid - 1;
  }
  return lo + 1;
}
