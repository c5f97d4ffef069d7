/** The one XML front end: strict parsing with fast-xml-parser into elements that carry their offsets in the original text. */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { inputError, type ExmitError } from '../errors.ts';

/** Where one attribute sits in the original text: its name's first character, and its value between the quotes. */
export interface XmlAttributeSpan {
  /** Index of the attribute name's first character. */
  start: number;
  /** Index just after the opening quote. */
  valueStart: number;
  /** Index of the closing quote. */
  valueEnd: number;
  quote: '"' | "'";
}

/** One element with its place in the original text; offsets are UTF-16 indexes into `XmlDocument.text` (a BOM included). */
export interface XmlElement {
  name: string;
  /** Attribute values with entity and character references decoded, in document order. */
  attributes: Record<string, string>;
  /** Attribute values exactly as written between the quotes. */
  rawAttributes: Record<string, string>;
  /** Where each attribute is written. */
  attributeSpans: Record<string, XmlAttributeSpan>;
  /** Child elements in document order (comments, text and processing instructions are not elements). */
  children: XmlElement[];
  /** The element's own text (children excluded, comments dropped, references decoded, CDATA verbatim), untrimmed. */
  text: string;
  /** 1-based line of the `<` that starts the element. */
  line: number;
  /** Index of the `<` of the start tag. */
  start: number;
  /** Index just after the start tag's `>`. */
  openEnd: number;
  /** Index of `</name` for an element with a close tag; null for `<name/>`. */
  closeStart: number | null;
  /** Index just after the element's last `>` (after `/>` or after `</name>`). */
  end: number;
  selfClosing: boolean;
  /** The enclosing element, null for the root (not enumerable, so JSON and deep equality never loop). */
  readonly parent: XmlElement | null;
}

/** A parsed file: the name used in messages, the exact text parsed, and its single root element. */
export interface XmlDocument {
  file: string;
  text: string;
  root: XmlElement;
}

/** What a text is, which sets the wording of messages. */
export type XmlKind = 'configuration file' | 'catalog' | 'fragment';

/** How strictly to read a text. */
export interface ParseXmlOptions {
  kind: XmlKind;
  /** Largest accepted size in UTF-8 bytes (BOM excluded). */
  maxBytes: number;
  /** Whether CDATA sections are allowed; a CDATA marker not in upper case is never well-formed. */
  allowCdata: boolean;
  /** Names an element (or one of its attributes) in messages about references; defaults to `<name>`. */
  describe?: (element: XmlElement, attribute: string | undefined) => string;
}

const WORDING: Record<XmlKind, { notWellFormed: string; doctype: string }> = {
  'configuration file': { notWellFormed: 'not well-formed', doctype: 'a DOCTYPE is not allowed in a configuration file (no DTD, no entity expansion)' },
  catalog: { notWellFormed: 'not well-formed XML', doctype: 'a DOCTYPE or entity declaration is not allowed in a catalog (no DTD, no entity expansion)' },
  fragment: { notWellFormed: 'not well-formed XML', doctype: 'a DOCTYPE or entity declaration is not allowed in an XML fragment' },
};

// preserveOrder keeps every child in document order (what isArray would give for each repeatable element);
// no entity processing, no value parsing ("15.20" stays a string), declarations and PIs dropped.
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
  removeNSPrefix: false,
  captureMetaData: true,
  trimValues: false,
});

const META = XMLParser.getMetaDataSymbol() as unknown as symbol;
const ATTRS = ':@';
const TEXT = '#text';
const lineCache = new WeakMap<object, number[]>();

/** Parses `text` strictly; every problem is an inputError naming the file and line: size, DOCTYPE, CDATA, well-formedness, more than one root, bad references. */
export function parseXml(text: string, file: string, options: ParseXmlOptions): XmlDocument {
  const words = WORDING[options.kind];
  const shift = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const body = shift === 1 ? text.slice(1) : text;
  const bytes = Buffer.byteLength(body, 'utf8');
  if (bytes > options.maxBytes) {
    throw inputError(`${file}: ${bytes} bytes, over the limit of ${options.maxBytes} bytes for a ${options.kind}`);
  }
  const doc: XmlDocument = { file, text, root: undefined as unknown as XmlElement };
  for (const mark of declarations(text)) {
    if (mark.kind === 'doctype') throw at(doc, mark.index, words.doctype);
    if (mark.kind === 'bad-cdata') throw at(doc, mark.index, `${words.notWellFormed}: a CDATA section must be written <![CDATA[ in upper case`);
    if (!options.allowCdata) throw at(doc, mark.index, 'CDATA sections are not allowed; escape < and & as &lt; and &amp;');
  }
  const validation = XMLValidator.validate(body, { allowBooleanAttributes: false });
  if (validation !== true) {
    throw inputError(`${file} line ${validation.err.line}: ${words.notWellFormed}: ${validation.err.msg}`);
  }
  let parsed: unknown;
  try {
    parsed = parser.parse(body);
  } catch (error) {
    throw inputError(`${file}: ${words.notWellFormed}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const builder = new Builder(doc, shift, words.notWellFormed);
  const roots = builder.elements(parsed, null);
  const root = roots[0];
  if (root === undefined) throw inputError(`${file}: ${words.notWellFormed}: no root element`);
  const second = roots[1];
  if (second !== undefined) throw at(doc, second.start, `${words.notWellFormed}: a second root element <${second.name}>; a ${options.kind} has exactly one`);
  builder.checkTrailing(root.end);
  doc.root = root;
  decodeAll(doc, root, builder, options.describe ?? ((el) => `<${el.name}>`));
  return doc;
}

/** The 1-based line of `offset` in the document's text (LF, CRLF and lone CR end a line). */
export function lineAt(doc: XmlDocument, offset: number): number {
  let starts = lineCache.get(doc);
  if (starts === undefined) {
    starts = lineStarts(doc.text);
    lineCache.set(doc, starts);
  }
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if ((starts[mid] ?? 0) <= offset) low = mid;
    else high = mid - 1;
  }
  return low + 1;
}

/** The shared error shape: an inputError `<file> line <n>: <reason>` for the line holding `offset`. */
export function xmlError(doc: XmlDocument, offset: number, reason: string): ExmitError {
  return at(doc, offset, reason);
}

/** The 1-based line of an element's attribute (the element's line when it has no such attribute). */
export function attributeLine(doc: XmlDocument, element: XmlElement, attribute: string): number {
  const span = Object.hasOwn(element.attributeSpans, attribute) ? element.attributeSpans[attribute] : undefined;
  return span === undefined ? element.line : lineAt(doc, span.start);
}

/** Decodes the five predefined entities and character references; anything else (a bare `&`, an unknown or DTD entity, a non-character) is a problem, since nothing is ever expanded. */
export function decodeEntities(raw: string): { value: string } | { problem: string } {
  if (!raw.includes('&')) return { value: raw };
  let out = '';
  let from = 0;
  for (let amp = raw.indexOf('&'); amp >= 0; amp = raw.indexOf('&', from)) {
    out += raw.slice(from, amp);
    const semi = raw.indexOf(';', amp);
    const name = semi < 0 ? '' : raw.slice(amp + 1, semi);
    if (semi < 0 || !/^(?:#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z_:][A-Za-z0-9_:.-]{0,40})$/.test(name)) {
      return { problem: 'a bare "&" must be written &amp;' };
    }
    const named = PREDEFINED[name];
    if (named !== undefined) {
      out += named;
    } else if (name.startsWith('#')) {
      const point = name.startsWith('#x') ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      if (point === 0 || point > 0x10ffff || (point >= 0xd800 && point <= 0xdfff)) return { problem: `&${name}; is not a character` };
      out += String.fromCodePoint(point);
    } else {
      return { problem: `unknown entity &${name}; (only &amp; &lt; &gt; &quot; &apos; and character references)` };
    }
    from = semi + 1;
  }
  return { value: out + raw.slice(from) };
}

/** Escapes a value for a double-quoted attribute. */
export function escapeAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

/** Escapes element text. */
export function escapeText(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** The element's ancestors from the root down to its parent. */
export function ancestorsOf(element: XmlElement): XmlElement[] {
  const out: XmlElement[] = [];
  for (let e = element.parent; e !== null; e = e.parent) out.unshift(e);
  return out;
}

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function at(doc: XmlDocument, offset: number, reason: string): ExmitError {
  return inputError(`${doc.file} line ${lineAt(doc, offset)}: ${reason}`);
}

function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 10 || (ch === 13 && text.charCodeAt(i + 1) !== 10)) starts.push(i + 1);
  }
  return starts;
}

/** DOCTYPE/ENTITY declarations and CDATA sections outside comments, in document order. */
function declarations(text: string): { kind: 'doctype' | 'cdata' | 'bad-cdata'; index: number }[] {
  const marks: { kind: 'doctype' | 'cdata' | 'bad-cdata'; index: number }[] = [];
  let from = 0;
  for (let i = text.indexOf('<!', from); i >= 0; i = text.indexOf('<!', from)) {
    if (text.startsWith('<!--', i)) {
      const close = text.indexOf('-->', i + 4);
      if (close < 0) break;
      from = close + 3;
      continue;
    }
    const head = text.slice(i, i + 9);
    if (head.toUpperCase() === '<![CDATA[') {
      marks.push({ kind: head === '<![CDATA[' ? 'cdata' : 'bad-cdata', index: i });
      const close = text.indexOf(']]>', i + 9);
      if (close < 0) break;
      from = close + 3;
      continue;
    }
    if (/^<!(?:DOCTYPE|ENTITY)/i.test(text.slice(i, i + 9))) marks.push({ kind: 'doctype', index: i });
    from = i + 2;
  }
  return marks;
}

interface Pending {
  element: XmlElement;
  /** Text pieces in order: raw text (references to decode) or CDATA content (verbatim). */
  pieces: { raw: string; cdata: boolean; at: number }[];
}

/** Turns fast-xml-parser's ordered nodes into elements, reading offsets from the original text with a lexer that respects quotes, comments, CDATA and PIs. */
class Builder {
  readonly pending = new Map<XmlElement, Pending>();
  private readonly doc: XmlDocument;
  private readonly text: string;
  private readonly shift: number;
  private readonly notWellFormed: string;

  constructor(doc: XmlDocument, shift: number, notWellFormed: string) {
    this.doc = doc;
    this.text = doc.text;
    this.shift = shift;
    this.notWellFormed = notWellFormed;
  }

  elements(nodes: unknown, parent: XmlElement | null): XmlElement[] {
    if (!Array.isArray(nodes)) return [];
    const out: XmlElement[] = [];
    for (const node of nodes as Record<string | symbol, unknown>[]) {
      const name = Object.keys(node).find((k) => k !== ATTRS && k !== TEXT);
      if (name === undefined) continue;
      const meta = node[META] as { startIndex?: number } | undefined;
      if (meta?.startIndex === undefined) throw new Error(`XML front end: no start offset for <${name}> in ${this.doc.file}`);
      out.push(this.element(name, node, meta.startIndex + this.shift, parent));
    }
    return out;
  }

  /** Only whitespace, comments and PIs may follow the root. */
  checkTrailing(from: number): void {
    const next = this.skipMarkup(from, null);
    if (next < this.text.length) this.mismatch(next);
  }

  private element(name: string, node: Record<string | symbol, unknown>, start: number, parent: XmlElement | null): XmlElement {
    const text = this.text;
    if (text[start] !== '<' || !text.startsWith(name, start + 1)) this.mismatch(start);
    let i = start + 1 + name.length;
    const attributes: Record<string, string> = {};
    const rawAttributes: Record<string, string> = {};
    const attributeSpans: Record<string, XmlAttributeSpan> = {};
    let selfClosing = false;
    for (;;) {
      const ws = i;
      while (isSpace(text.charCodeAt(i))) i++;
      if (text.startsWith('/>', i)) {
        selfClosing = true;
        i += 2;
        break;
      }
      if (text[i] === '>') {
        i += 1;
        break;
      }
      if (i === ws) this.mismatch(i);
      const nameStart = i;
      for (let ch = text.charCodeAt(i); i < text.length && !isSpace(ch) && ch !== 0x3d && ch !== 0x2f && ch !== 0x3e; ch = text.charCodeAt(i)) i++;
      const attr = text.slice(nameStart, i);
      while (isSpace(text.charCodeAt(i))) i++;
      if (attr === '' || text[i] !== '=') this.mismatch(i);
      i++;
      while (isSpace(text.charCodeAt(i))) i++;
      const quote = text[i];
      if (quote !== '"' && quote !== "'") this.mismatch(i);
      const valueEnd = text.indexOf(quote, i + 1);
      if (valueEnd < 0) this.mismatch(i);
      define(rawAttributes, attr, text.slice(i + 1, valueEnd));
      define(attributeSpans, attr, { start: nameStart, valueStart: i + 1, valueEnd, quote });
      i = valueEnd + 1;
    }
    const theirs = Object.keys((node[ATTRS] ?? {}) as Record<string, unknown>);
    const ours = Object.keys(rawAttributes);
    if (theirs.length !== ours.length || theirs.some((k) => !Object.hasOwn(rawAttributes, k))) this.mismatch(start);
    const element: XmlElement = {
      name,
      attributes,
      rawAttributes,
      attributeSpans,
      children: [],
      text: '',
      line: lineAt(this.doc, start),
      start,
      openEnd: i,
      closeStart: null,
      end: i,
      selfClosing,
      parent: null,
    };
    Object.defineProperty(element, 'parent', { value: parent, enumerable: false, writable: false });
    const pending: Pending = { element, pieces: [] };
    this.pending.set(element, pending);
    if (selfClosing) return element;

    let pos = i;
    for (const child of this.elements(node[name], element)) {
      const next = this.skipMarkup(pos, pending);
      if (next !== child.start) this.mismatch(next);
      element.children.push(child);
      pos = child.end;
    }
    const close = this.skipMarkup(pos, pending);
    if (!text.startsWith(`</${name}`, close)) this.mismatch(close);
    let j = close + 2 + name.length;
    while (isSpace(text.charCodeAt(j))) j++;
    if (text[j] !== '>') this.mismatch(close);
    element.closeStart = close;
    element.end = j + 1;
    return element;
  }

  /** From `from`, passes text, comments, CDATA and PIs (collecting text into `pending`); returns the index of the next tag's `<` (or the text's end). */
  private skipMarkup(from: number, pending: Pending | null): number {
    const text = this.text;
    let pos = from;
    for (;;) {
      const lt = text.indexOf('<', pos);
      const stop = lt < 0 ? text.length : lt;
      if (stop > pos) {
        if (pending !== null) pending.pieces.push({ raw: text.slice(pos, stop), cdata: false, at: pos });
        else if (text.slice(pos, stop).trim() !== '') return pos;
      }
      if (lt < 0) return text.length;
      let close = -1;
      if (text.startsWith('<!--', lt)) close = endOf(text, '-->', lt + 4);
      else if (text.startsWith('<![CDATA[', lt)) {
        close = endOf(text, ']]>', lt + 9);
        if (pending !== null && close > 0) pending.pieces.push({ raw: text.slice(lt + 9, close - 3), cdata: true, at: lt });
      } else if (text.startsWith('<?', lt)) close = endOf(text, '?>', lt + 2);
      else return lt;
      if (close < 0) this.mismatch(lt);
      pos = close;
    }
  }

  private mismatch(offset: number): never {
    throw at(this.doc, Math.min(offset, this.text.length), `${this.notWellFormed}: unexpected markup`);
  }
}

function decodeAll(doc: XmlDocument, element: XmlElement, builder: Builder, describe: (el: XmlElement, attr: string | undefined) => string): void {
  for (const [name, raw] of Object.entries(element.rawAttributes)) {
    const where = () => `${doc.file} line ${attributeLine(doc, element, name)}: ${describe(element, name)}: attribute ${name}`;
    if (raw.includes('<')) throw inputError(`${where()}: "<" must be written &lt;`);
    const decoded = decodeEntities(raw);
    if ('problem' in decoded) throw inputError(`${where()}: ${decoded.problem}`);
    define(element.attributes, name, decoded.value);
  }
  const pending = builder.pending.get(element);
  let text = '';
  for (const piece of pending?.pieces ?? []) {
    if (piece.cdata) {
      text += piece.raw;
      continue;
    }
    const decoded = decodeEntities(piece.raw);
    if ('problem' in decoded) throw inputError(`${doc.file} line ${element.line}: ${describe(element, undefined)}: text: ${decoded.problem}`);
    text += decoded.value;
  }
  element.text = text;
  for (const child of element.children) decodeAll(doc, child, builder, describe);
}

function endOf(text: string, marker: string, from: number): number {
  const i = text.indexOf(marker, from);
  return i < 0 ? -1 : i + marker.length;
}

function isSpace(ch: number): boolean {
  return ch === 0x20 || ch === 0x09 || ch === 0x0a || ch === 0x0d;
}

// An attribute named __proto__ must become an own property, not the prototype.
function define<T>(target: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__') Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  else target[key] = value;
}
