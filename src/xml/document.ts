/** The one XML front end: strict parsing with fast-xml-parser into elements that carry their offsets in the original text. */
import { XMLValidator } from 'fast-xml-parser';
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
  // fast-xml-parser judges well-formedness (its messages are the ones users see); the lexer then builds the
  // elements in one pass and refuses on its own anything it cannot place. Building the tree with XMLParser
  // (preserveOrder, captureMetaData) and cross-checking it cost several times more for no extra strictness:
  // scripts/bench-xml.ts measures it.
  const validation = XMLValidator.validate(body, { allowBooleanAttributes: false });
  if (validation !== true) {
    throw inputError(`${file} line ${validation.err.line}: ${words.notWellFormed}: ${validation.err.msg}`);
  }
  doc.root = new Lexer(doc, shift, options.kind, words.notWellFormed).read(options.describe ?? ((el) => `<${el.name}>`));
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

// Whitespace to JavaScript but a name character to the validator (U+FEFF, U+1680): never part of a name here.
const OTHER_SPACE = /\s/;
const NAME_START = ':A-Z_a-z\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C-\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD';
/** An XML 1.0 Name (used for PI targets; the validator checks element and attribute names). */
const XML_NAME = new RegExp(`^[${NAME_START}][${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040]*$`);
const XML_DECLARATION_START = /^<\?xml[\s?]/;
const XML_DECLARATION = /^<\?xml\s+version\s*=\s*(["'])1\.[0-9]+\1(?:\s+encoding\s*=\s*(["'])[A-Za-z][A-Za-z0-9._-]*\2)?(?:\s+standalone\s*=\s*(["'])(?:yes|no)\3)?\s*\?>$/;

/** An element still open while the lexer reads its content. */
interface Open {
  element: XmlElement;
  /** The element's place in a depth-first walk, which orders reference problems. */
  order: number;
  /** Its text so far (references decoded, CDATA verbatim). */
  text: string;
}

/** A reference problem met while building; reported once the tree is whole, so `describe` sees decoded ancestors. */
interface Problem {
  order: number;
  element: XmlElement;
  attribute: string | undefined;
  reason: string;
}

/** Builds the elements in one pass over text the validator accepted, refusing on its own anything it cannot place: it respects quotes, comments, CDATA and PIs, matches close tags by name, and allows one root. */
class Lexer {
  private readonly doc: XmlDocument;
  private readonly text: string;
  private readonly shift: number;
  private readonly kind: XmlKind;
  private readonly notWellFormed: string;
  /** The line of `linePos`; element starts only move forwards, so lines are counted once over the text. */
  private line = 1;
  private linePos = 0;
  private count = 0;
  private problem: Problem | null = null;

  constructor(doc: XmlDocument, shift: number, kind: XmlKind, notWellFormed: string) {
    this.doc = doc;
    this.text = doc.text;
    this.shift = shift;
    this.kind = kind;
    this.notWellFormed = notWellFormed;
  }

  /** The root element; reference problems (bad entities, a raw `<` in an attribute) are thrown after the structure is known to be sound, the first in document order by element. */
  read(describe: (el: XmlElement, attr: string | undefined) => string): XmlElement {
    const text = this.text;
    if (XML_DECLARATION_START.test(text.slice(this.shift, this.shift + 6)) && !XML_DECLARATION.test(text.slice(this.shift, text.indexOf('?>', this.shift) + 2))) {
      throw at(this.doc, this.shift, `${this.notWellFormed}: the XML declaration must read <?xml version="1.0" encoding="..."?> (encoding and standalone="yes|no" optional)`);
    }
    const first = this.skipMisc(this.shift);
    if (first >= text.length) throw inputError(`${this.doc.file}: ${this.notWellFormed}: no root element`);
    if (text.charCodeAt(first) !== 0x3c) this.mismatch(first);
    const root = this.startTag(first, null);
    const stack: Open[] = [];
    if (!root.selfClosing) stack.push({ element: root, order: 0, text: '' });
    let pos = root.openEnd;
    while (stack.length > 0) {
      const top = stack[stack.length - 1] as Open;
      const lt = text.indexOf('<', pos);
      if (lt < 0) this.mismatch(top.element.start, `<${top.element.name}> is not closed`);
      if (lt > pos) this.addText(top, text.slice(pos, lt));
      const next = text.charCodeAt(lt + 1);
      if (next === 0x2f) {
        const element = top.element;
        if (!text.startsWith(element.name, lt + 2)) this.mismatch(lt);
        let j = lt + 2 + element.name.length;
        while (isSpace(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) !== 0x3e) this.mismatch(lt);
        element.closeStart = lt;
        element.end = j + 1;
        element.text = top.text;
        stack.pop();
        pos = j + 1;
      } else if (next === 0x21) {
        if (text.startsWith('<!--', lt)) pos = endOf(text, '-->', lt + 4);
        else if (text.startsWith('<![CDATA[', lt)) {
          pos = endOf(text, ']]>', lt + 9);
          if (pos > 0) top.text += text.slice(lt + 9, pos - 3);
          else this.mismatch(lt, 'a CDATA section is not closed');
        } else this.mismatch(lt);
        if (pos < 0) this.mismatch(lt, 'a comment is not closed');
      } else if (next === 0x3f) {
        pos = this.endOfPi(lt);
      } else {
        const child = this.startTag(lt, top.element);
        top.element.children.push(child);
        if (!child.selfClosing) stack.push({ element: child, order: this.count - 1, text: '' });
        pos = child.openEnd;
      }
    }
    const after = this.skipMisc(root.end);
    if (after < text.length) {
      const next = text.charCodeAt(after + 1);
      if (text.charCodeAt(after) !== 0x3c || next === 0x2f || next === 0x21) this.mismatch(after);
      const name = text.slice(after + 1, this.nameEnd(after + 1));
      throw at(this.doc, after, `${this.notWellFormed}: a second root element <${name}>; a ${this.kind} has exactly one`);
    }
    const problem = this.problem;
    if (problem !== null) {
      const where = problem.attribute === undefined ? `line ${problem.element.line}` : `line ${attributeLine(this.doc, problem.element, problem.attribute)}`;
      const what = problem.attribute === undefined ? 'text' : `attribute ${problem.attribute}`;
      throw inputError(`${this.doc.file} ${where}: ${describe(problem.element, problem.attribute)}: ${what}: ${problem.reason}`);
    }
    return root;
  }

  /** Reads the start tag at `start` (its `<`) into an element with decoded attributes. */
  private startTag(start: number, parent: XmlElement | null): XmlElement {
    const text = this.text;
    const nameEnd = this.nameEnd(start + 1);
    const name = text.slice(start + 1, nameEnd);
    if (name === '' || OTHER_SPACE.test(name)) this.mismatch(start);
    const attributes: Record<string, string> = {};
    const rawAttributes: Record<string, string> = {};
    const attributeSpans: Record<string, XmlAttributeSpan> = {};
    // parent is added (not redefined) as a non-enumerable property, which keeps every element one fast shape.
    const element = {
      name,
      attributes,
      rawAttributes,
      attributeSpans,
      children: [],
      text: '',
      line: this.lineOf(start),
      start,
      openEnd: 0,
      closeStart: null,
      end: 0,
      selfClosing: false,
    } as Omit<XmlElement, 'parent'> as XmlElement;
    Object.defineProperty(element, 'parent', { value: parent, enumerable: false, writable: false });
    const order = this.count++;
    let failed = false;
    let i = nameEnd;
    for (;;) {
      const ws = i;
      while (isSpace(text.charCodeAt(i))) i++;
      const ch = text.charCodeAt(i);
      if (ch === 0x2f && text.charCodeAt(i + 1) === 0x3e) {
        element.selfClosing = true;
        i += 2;
        break;
      }
      if (ch === 0x3e) {
        i += 1;
        break;
      }
      if (i >= text.length) this.mismatch(start, `the start tag <${name} is not closed`);
      if (i === ws) this.mismatch(i);
      const attrStart = i;
      for (let c = ch; i < text.length && !isSpace(c) && c !== 0x3d && c !== 0x2f && c !== 0x3e; c = text.charCodeAt(i)) i++;
      const attr = text.slice(attrStart, i);
      while (isSpace(text.charCodeAt(i))) i++;
      if (attr === '' || OTHER_SPACE.test(attr) || text.charCodeAt(i) !== 0x3d || Object.hasOwn(rawAttributes, attr)) this.mismatch(i);
      i++;
      while (isSpace(text.charCodeAt(i))) i++;
      const quote = text[i];
      if (quote !== '"' && quote !== "'") this.mismatch(i);
      const valueEnd = text.indexOf(quote, i + 1);
      if (valueEnd < 0) this.mismatch(i, `the value of attribute ${attr} is not closed`);
      const raw = text.slice(i + 1, valueEnd);
      define(rawAttributes, attr, raw);
      define(attributeSpans, attr, { start: attrStart, valueStart: i + 1, valueEnd, quote });
      i = valueEnd + 1;
      // Like a depth-first decode: after an element's first bad attribute, its later ones stay undecoded.
      if (failed) continue;
      if (raw.includes('<')) {
        failed = this.report(order, element, attr, '"<" must be written &lt;');
        continue;
      }
      const decoded = raw.includes('&') ? decodeEntities(raw) : { value: raw };
      if ('problem' in decoded) failed = this.report(order, element, attr, decoded.problem);
      else define(attributes, attr, decoded.value);
    }
    element.openEnd = i;
    element.end = i;
    return element;
  }

  private addText(open: Open, raw: string): void {
    if (!raw.includes('&')) {
      open.text += raw;
      return;
    }
    const decoded = decodeEntities(raw);
    if ('problem' in decoded) this.report(open.order, open.element, undefined, decoded.problem);
    else open.text += decoded.value;
  }

  /** Keeps the problem a depth-first walk (attributes, then text, then children) would meet first. */
  private report(order: number, element: XmlElement, attribute: string | undefined, reason: string): true {
    if (this.problem === null || this.problem.order > order) this.problem = { order, element, attribute, reason };
    return true;
  }

  /** Passes whitespace, comments and PIs (outside the root); returns the index of anything else, or the text's end. An unterminated comment or PI is refused. */
  private skipMisc(from: number): number {
    const text = this.text;
    let pos = from;
    for (;;) {
      while (isSpace(text.charCodeAt(pos))) pos++;
      const open = pos;
      if (text.startsWith('<!--', pos)) pos = endOf(text, '-->', pos + 4);
      else if (text.startsWith('<?', pos)) pos = pos === this.shift && XML_DECLARATION_START.test(text.slice(pos, pos + 6)) ? endOf(text, '?>', pos + 2) : this.endOfPi(pos);
      else return pos;
      if (pos < 0) this.mismatch(open, 'a comment is not closed');
    }
  }

  /** The index after the `?>` ending the PI at `start`, whose target must follow `<?` at once and may not be `xml` (the declaration is checked apart). */
  private endOfPi(start: number): number {
    const target = this.text.slice(start + 2, this.nameEnd(start + 2)).replace(/\?$/, '');
    if (!XML_NAME.test(target) || target.toLowerCase() === 'xml' || OTHER_SPACE.test(target)) this.mismatch(start);
    const end = endOf(this.text, '?>', start + 2);
    if (end < 0) this.mismatch(start, 'a processing instruction is not closed');
    return end;
  }

  /** The index just after a tag name starting at `from` (at whitespace, `/` or `>`). */
  private nameEnd(from: number): number {
    const text = this.text;
    let i = from;
    for (let c = text.charCodeAt(i); i < text.length && !isSpace(c) && c !== 0x2f && c !== 0x3e && c !== 0x3c; c = text.charCodeAt(i)) i++;
    return i;
  }

  private lineOf(offset: number): number {
    const text = this.text;
    let line = this.line;
    for (let k = this.linePos; k < offset; k++) {
      const ch = text.charCodeAt(k);
      if (ch === 10 || (ch === 13 && text.charCodeAt(k + 1) !== 10)) line++;
    }
    this.line = line;
    this.linePos = offset;
    return line;
  }

  private mismatch(offset: number, reason = 'unexpected markup'): never {
    throw at(this.doc, Math.min(offset, this.text.length), `${this.notWellFormed}: ${reason}`);
  }
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
