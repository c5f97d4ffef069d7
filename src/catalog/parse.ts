/** Reads a catalog XML file strictly into typed records (format: mitigations/README.md). */

import semver from 'semver';
import { inputError } from '../errors.ts';
import { readShipped, SHIPPED, shippedName } from '../sea.ts';
import { compareBuilds, formatBuild, parseBuild } from '../exchange/build.ts';
import type { Build } from '../exchange/build.ts';
import { productOfBuild } from '../exchange/build-table.ts';
import { attributeLine, lineAt, parseXml, type XmlDocument, type XmlElement } from '../xml/document.ts';
import { PRODUCTS, ROLES } from './types.ts';
import { cdataIndex, globalModuleProblem, locationProblem, outboundValueProblem, outboundVariableProblem, serialProblem } from './vocabulary.ts';
import type {
  Action,
  Catalog,
  FixedUpdate,
  InboundRuleAction,
  Mitigation,
  OutboundRuleAction,
  Probe,
  Product,
  ProductFix,
  Role,
  RuleCondition,
  WindowsFix,
  WindowsFixVersion,
} from './types.ts';

/** The namespace the root element must declare; a new major format gets a new one. */
export const CATALOG_NAMESPACE = 'urn:exmit:catalog:1';

/** Largest catalog accepted, in bytes: the bundled one is far smaller, and a feed must not exhaust memory. */
export const MAX_CATALOG_BYTES = 1024 * 1024;

/** Prefix every rule and precondition name carries, so that exmit's own rules are told apart. */
export const RULE_NAME_PREFIX = 'exmit ';

type Cardinality = 'one' | 'optional' | 'some' | 'any';

interface ElementSpec {
  /** Attribute name: required? */
  attrs: Record<string, boolean>;
  children: Record<string, Cardinality>;
  text: 'none' | 'required';
}

const TEXT_ONLY: ElementSpec = { attrs: {}, children: {}, text: 'required' };

/** Every element of the format; anything else is rejected. */
const SCHEMA: Record<string, ElementSpec> = {
  catalog: {
    attrs: { xmlns: true, serial: true, published: true, expires: true, requires: true },
    children: { mitigation: 'some' },
    text: 'none',
  },
  mitigation: {
    attrs: { id: true, severity: true },
    children: {
      title: 'one',
      cve: 'some',
      description: 'one',
      reference: 'some',
      appliesTo: 'one',
      breaks: 'optional',
      sideEffect: 'any',
      notApplicable: 'any',
      patchOnly: 'any',
      fixedIn: 'any',
      windowsFix: 'optional',
      probes: 'optional',
      actions: 'optional',
    },
    text: 'none',
  },
  title: TEXT_ONLY,
  cve: TEXT_ONLY,
  description: TEXT_ONLY,
  reference: TEXT_ONLY,
  breaks: TEXT_ONLY,
  sideEffect: TEXT_ONLY,
  recognisePrefix: TEXT_ONLY,
  appliesTo: { attrs: { products: true, roles: true }, children: {}, text: 'none' },
  notApplicable: { attrs: { product: true }, children: {}, text: 'required' },
  patchOnly: { attrs: { product: false }, children: {}, text: 'required' },
  fixedIn: {
    attrs: { product: true, allFixed: false },
    children: { update: 'any', fixedFrom: 'optional', safeToRemove: 'any' },
    text: 'none',
  },
  update: { attrs: { cu: true, build: true, label: true }, children: {}, text: 'none' },
  fixedFrom: { attrs: { cu: true, build: true }, children: {}, text: 'none' },
  safeToRemove: { attrs: { cu: true, build: true, label: true }, children: {}, text: 'none' },
  windowsFix: { attrs: { file: true, update: true }, children: { windows: 'some' }, text: 'none' },
  windows: {
    attrs: { name: true, osVersion: true, fileVersion: true, fixed: false, notAffected: false },
    children: {},
    text: 'none',
  },
  probes: { attrs: {}, children: { probe: 'some' }, text: 'none' },
  probe: {
    attrs: { kind: true, url: true, description: true, method: false, site: false },
    children: { header: 'any', response: 'optional', expectHeader: 'optional' },
    text: 'none',
  },
  header: { attrs: { name: true, value: true }, children: {}, text: 'none' },
  response: { attrs: { contentType: true }, children: { header: 'any' }, text: 'none' },
  expectHeader: { attrs: { name: true, contains: true }, children: {}, text: 'none' },
  actions: {
    attrs: {},
    children: { 'inbound-rule': 'any', 'outbound-rule': 'any', 'app-pool': 'any', service: 'any', 'remove-global-module': 'any' },
    text: 'none',
  },
  'inbound-rule': {
    attrs: { location: true, name: true, matchUrl: true, logicalGrouping: false, stopProcessing: false },
    children: { condition: 'any', action: 'one' },
    text: 'none',
  },
  condition: { attrs: { input: true, pattern: true, negate: false, ignoreCase: false }, children: {}, text: 'none' },
  action: { attrs: { type: true, statusCode: false, statusReason: false, statusDescription: false }, children: {}, text: 'none' },
  'outbound-rule': {
    attrs: { location: true, name: true, serverVariable: true, pattern: true, value: true },
    children: { precondition: 'one', recognisePrefix: 'any' },
    text: 'none',
  },
  precondition: { attrs: { name: true, logicalGrouping: false }, children: { condition: 'some' }, text: 'none' },
  'app-pool': { attrs: { name: true }, children: {}, text: 'none' },
  service: { attrs: { name: true, products: false, roles: false }, children: {}, text: 'none' },
  'remove-global-module': { attrs: { name: true }, children: {}, text: 'none' },
};

/** The attribute that names an element in error paths. */
const KEY_ATTRIBUTE: Record<string, string> = {
  mitigation: 'id',
  notApplicable: 'product',
  patchOnly: 'product',
  fixedIn: 'product',
  update: 'cu',
  fixedFrom: 'cu',
  safeToRemove: 'cu',
  windowsFix: 'file',
  windows: 'name',
  probe: 'url',
  header: 'name',
  expectHeader: 'name',
  'inbound-rule': 'name',
  'outbound-rule': 'name',
  precondition: 'name',
  condition: 'input',
  action: 'type',
  'app-pool': 'name',
  service: 'name',
  'remove-global-module': 'name',
};

const SEVERITIES = ['critical', 'important', 'moderate'] as const;
const PROBE_KINDS = ['attack', 'bypass', 'ordinary'] as const;
const GROUPINGS = ['MatchAll', 'MatchAny'] as const;
const PRODUCT_PREFIX: Record<Product, string> = { '2013': '15.0.', '2016': '15.1.', '2019': '15.2.', SE: '15.2.' };
const EXCHANGE_NAME = /^MSExchange[A-Za-z0-9]+$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const SERVER_VARIABLE_INPUT = /^\{(?:[A-Za-z][A-Za-z0-9_]*|(?:UrlDecode|UrlEncode|ToLower|EscapeDataString):\{[A-Za-z][A-Za-z0-9_]*\})\}$/;

/** Parses and validates a catalog; every problem is an inputError naming the file, line, element path and reason. `maxBytes` raises the size limit (benchmarks only); `now` is the clock the serial must not be ahead of (default: the system clock; null: no such check, for the bundled catalog). */
export function parseCatalog(xmlText: string, file: string, options: { maxBytes?: number; now?: Date | null } = {}): Catalog {
  return new CatalogReader(xmlText, file, options.maxBytes ?? MAX_CATALOG_BYTES, options.now === undefined ? new Date() : options.now).read();
}

/** Reads the catalog shipped with the package (mitigations/catalog.xml; in exmit.exe its embedded asset, src/sea.ts). */
export function loadBundledCatalog(): Catalog {
  const path = shippedName(SHIPPED.catalog);
  let bytes: Buffer;
  try {
    bytes = readShipped(SHIPPED.catalog);
  } catch (error) {
    throw inputError(`${path}: cannot read the bundled catalog (${(error as Error).message})`, 'reinstall exmit: the package is incomplete');
  }
  if (bytes.length > MAX_CATALOG_BYTES) {
    throw inputError(`${path}: ${bytes.length} bytes, over the limit of ${MAX_CATALOG_BYTES} bytes for a catalog`);
  }
  return parseCatalog(bytes.toString('utf8'), path, { now: null });
}

/** The mitigations whose id or one of whose CVEs equals idOrCve, ignoring case; empty when none does. */
export function findMitigation(catalog: Catalog, idOrCve: string): Mitigation[] {
  const wanted = idOrCve.trim().toLowerCase();
  const byId = catalog.mitigations.filter((m) => m.id.toLowerCase() === wanted);
  if (byId.length > 0) return byId;
  return catalog.mitigations.filter((m) => m.cves.some((cve) => cve.toLowerCase() === wanted));
}

class CatalogReader {
  private readonly text: string;
  private readonly file: string;
  private readonly ruleNames = new Map<string, XmlElement>();
  private readonly maxBytes: number;
  private readonly now: Date | null;
  private doc: XmlDocument | null = null;

  constructor(text: string, file: string, maxBytes: number, now: Date | null) {
    this.maxBytes = maxBytes;
    this.now = now;
    this.text = text;
    this.file = file;
  }

  read(): Catalog {
    // A CDATA opener in any letter case is refused as such (parseXml would call a lower-case one not well-formed).
    const cdata = cdataIndex(this.text);
    if (cdata >= 0) {
      const line = this.text.slice(0, cdata).split(/\r\n|\r|\n/).length;
      throw inputError(`${this.file} line ${line}: CDATA sections are not allowed; escape < and & as &lt; and &amp;`);
    }
    this.doc = parseXml(this.text, this.file, {
      kind: 'catalog',
      maxBytes: this.maxBytes,
      allowCdata: false,
      describe: (element, attr) => this.path(element, attr),
    });
    this.checkShape(this.doc.root);
    return this.readCatalog(this.doc.root);
  }

  // ---- structure ------------------------------------------------------------------------------

  /** Checks every element against SCHEMA: known names, known and required attributes, counts, text. */
  private checkShape(element: XmlElement): void {
    if (element.parent === null && element.name !== 'catalog') {
      throw this.fail(element, `the root element must be <catalog>, not <${element.name}>`);
    }
    const spec = SCHEMA[element.name];
    if (spec === undefined) throw this.fail(element, `unknown element <${element.name}>`);
    for (const name of Object.keys(element.attributes)) {
      if (!(name in spec.attrs)) {
        const allowed = Object.keys(spec.attrs);
        throw this.fail(element, `unknown attribute ${name}${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ' (this element takes none)'}`, name);
      }
    }
    for (const [name, required] of Object.entries(spec.attrs)) {
      if (required && !Object.hasOwn(element.attributes, name)) throw this.fail(element, `missing attribute ${name}`);
    }
    if (spec.text === 'none' && element.text.trim() !== '') {
      throw this.fail(element, `text is not allowed in <${element.name}> ("${shorten(element.text.trim())}")`);
    }
    if (spec.text === 'required' && textOf(element) === '') throw this.fail(element, `<${element.name}> must not be empty`);
    const counts = new Map<string, number>();
    for (const child of element.children) {
      if (!(child.name in spec.children)) {
        const allowed = Object.keys(spec.children);
        const vocabulary = element.name === 'actions' ? '; the action vocabulary is closed and nothing else can be expressed' : '';
        throw this.fail(
          child,
          `unknown element <${child.name}> in <${element.name}>${allowed.length > 0 ? ` (allowed: ${allowed.join(', ')})` : ' (it takes no child elements)'}${vocabulary}`,
        );
      }
      counts.set(child.name, (counts.get(child.name) ?? 0) + 1);
    }
    for (const [name, card] of Object.entries(spec.children)) {
      const count = counts.get(name) ?? 0;
      if ((card === 'one' || card === 'some') && count === 0) throw this.fail(element, `missing element <${name}>`);
      if ((card === 'one' || card === 'optional') && count > 1) {
        const second = element.children.filter((c) => c.name === name)[1] ?? element;
        throw this.fail(second, `<${name}> may appear only once in <${element.name}>`);
      }
    }
    for (const child of element.children) this.checkShape(child);
  }

  // ---- typed records --------------------------------------------------------------------------

  private readCatalog(root: XmlElement): Catalog {
    if (this.attr(root, 'xmlns') !== CATALOG_NAMESPACE) {
      throw this.fail(root, `xmlns must be "${CATALOG_NAMESPACE}" (this exmit reads version 1 of the catalog format)`, 'xmlns');
    }
    const serialText = this.attr(root, 'serial');
    if (!/^[1-9][0-9]{0,14}$/.test(serialText)) throw this.fail(root, `serial "${serialText}" is not a positive integer (YYYYMMDDNN is usual)`, 'serial');
    const published = this.date(root, 'published');
    const serialRule = serialProblem(serialText, published, this.now);
    if (serialRule !== null) throw this.fail(root, serialRule, 'serial');
    const expires = this.date(root, 'expires');
    if (expires <= published) throw this.fail(root, `expires ${expires} is not after published ${published}`, 'expires');
    const requires = this.attr(root, 'requires');
    if (semver.validRange(requires) === null) throw this.fail(root, `requires "${requires}" is not a semver range`, 'requires');
    const mitigations: Mitigation[] = [];
    const ids = new Map<string, XmlElement>();
    for (const element of this.childrenNamed(root, 'mitigation')) {
      const mitigation = this.readMitigation(element);
      const key = mitigation.id.toLowerCase();
      const first = ids.get(key);
      if (first !== undefined) throw this.fail(element, `duplicate id "${mitigation.id}" (first at line ${this.lineOf(first)})`, 'id');
      ids.set(key, element);
      mitigations.push(mitigation);
    }
    return { serial: Number(serialText), published, expires, requires, mitigations };
  }

  private readMitigation(element: XmlElement): Mitigation {
    const id = this.attr(element, 'id');
    if (!/^[a-z0-9]+(?:-[a-z0-9]+)*$/.test(id) || id.length > 64) {
      throw this.fail(element, `id "${id}" must be lower-case letters, digits and single hyphens (at most 64)`, 'id');
    }
    const severity = this.oneOf(element, 'severity', SEVERITIES);
    const cves: string[] = [];
    for (const cve of this.childrenNamed(element, 'cve')) {
      if (!/^CVE-\d{4}-\d{4,}$/.test(textOf(cve))) throw this.fail(cve, `"${textOf(cve)}" is not a CVE number like CVE-2022-41040`);
      if (cves.includes(textOf(cve))) throw this.fail(cve, `${textOf(cve)} is listed twice`);
      cves.push(textOf(cve));
    }
    const references = this.childrenNamed(element, 'reference').map((ref) => {
      let url: URL;
      try {
        url = new URL(textOf(ref));
      } catch {
        throw this.fail(ref, `"${textOf(ref)}" is not a URL`);
      }
      if (url.protocol !== 'https:') throw this.fail(ref, `"${textOf(ref)}" is not an https URL`);
      return textOf(ref);
    });
    const appliesTo = this.child(element, 'appliesTo');
    const products = this.productList(appliesTo, 'products', true);
    const roles = this.roleList(appliesTo, 'roles', true);
    const breaksElement = this.optionalChild(element, 'breaks');
    const notApplicable = this.childrenNamed(element, 'notApplicable').map((na) => {
      const product = this.product(na, 'product');
      if (products.includes(product)) throw this.fail(na, `product ${product} is in <appliesTo products>: a product is either applicable or not`, 'product');
      return { product, reason: textOf(na) };
    });
    const patchOnly = this.childrenNamed(element, 'patchOnly').map((po) => {
      const product = Object.hasOwn(po.attributes, 'product') ? this.product(po, 'product') : null;
      if (product !== null && !products.includes(product)) throw this.fail(po, `product ${product} is not in <appliesTo products>`, 'product');
      return { product, reason: textOf(po) };
    });
    const fix = this.readFix(element, products);
    const actions = this.readActions(element, products, roles);
    const probes = this.readProbes(element, actions);
    return {
      id,
      title: textOf(this.child(element, 'title')),
      cves,
      severity,
      description: textOf(this.child(element, 'description')),
      references,
      products,
      roles,
      breaks: breaksElement === null ? null : textOf(breaksElement),
      sideEffects: this.childrenNamed(element, 'sideEffect').map((s) => textOf(s)),
      notApplicable,
      patchOnly,
      fix,
      probes,
      actions,
    };
  }

  private readFix(element: XmlElement, products: Product[]): Mitigation['fix'] {
    const fixedIns = this.childrenNamed(element, 'fixedIn');
    const windowsElement = this.optionalChild(element, 'windowsFix');
    if (windowsElement !== null) {
      const first = fixedIns[0];
      if (first !== undefined) throw this.fail(first, 'a mitigation is fixed either by Exchange builds (<fixedIn>) or by Windows (<windowsFix>), not both');
      return { kind: 'windows', windows: this.readWindowsFix(windowsElement) };
    }
    if (fixedIns.length === 0) throw this.fail(element, 'missing <fixedIn> (one per product) or <windowsFix>');
    const fixes: ProductFix[] = [];
    for (const fixedIn of fixedIns) {
      const fix = this.readProductFix(fixedIn);
      if (!products.includes(fix.product)) throw this.fail(fixedIn, `product ${fix.product} is not in <appliesTo products>`, 'product');
      if (fixes.some((f) => f.product === fix.product)) throw this.fail(fixedIn, `a second <fixedIn> for product ${fix.product}`, 'product');
      fixes.push(fix);
    }
    for (const product of products) {
      if (!fixes.some((f) => f.product === product)) {
        throw this.fail(element, `missing <fixedIn product="${product}">: every product in <appliesTo> says how its builds are fixed (an empty <fixedIn> means no fix yet)`);
      }
    }
    return { kind: 'exchange', products: fixes };
  }

  private readProductFix(element: XmlElement): ProductFix {
    const product = this.product(element, 'product');
    const allFixed = this.bool(element, 'allFixed', false);
    if (allFixed && element.children.length > 0) {
      throw this.fail(element.children[0] ?? element, 'allFixed="true" takes no <update>, <fixedFrom> or <safeToRemove>: every build is fixed');
    }
    const updates: FixedUpdate[] = [];
    const parsedUpdates: Build[] = [];
    for (const update of this.childrenNamed(element, 'update')) {
      const entry = this.fixedBuild(update, product, true);
      const clash = updates.findIndex((u, i) => u.cu === entry.update.cu || parsedUpdates[i]?.[2] === entry.build[2]);
      if (clash >= 0) throw this.fail(update, `${entry.update.cu} (${entry.update.build}) is listed twice: give one <update> per CU, its first fixed build`, 'build');
      updates.push(entry.update);
      parsedUpdates.push(entry.build);
    }
    const fromElement = this.optionalChild(element, 'fixedFrom');
    let fixedFrom: { cu: string; build: Build } | null = null;
    if (fromElement !== null) {
      const entry = this.fixedBuild(fromElement, product, false);
      fixedFrom = { cu: entry.update.cu, build: entry.build };
      const later = updates.findIndex((_, i) => (parsedUpdates[i]?.[2] ?? 0) >= entry.build[2]);
      if (later >= 0) {
        const offending = this.childrenNamed(element, 'update')[later] ?? element;
        throw this.fail(offending, `CU ${updates[later]?.cu} is not older than fixedFrom ${entry.update.cu} (${formatBuild(entry.build)}): CUs from fixedFrom on shipped with the fix`, 'build');
      }
    }
    const safeToRemoveFrom: FixedUpdate[] = [];
    for (const safe of this.childrenNamed(element, 'safeToRemove')) {
      const entry = this.fixedBuild(safe, product, true);
      const index = parsedUpdates.findIndex((b) => b[2] === entry.build[2]);
      const fromLine = fixedFrom !== null && entry.build[2] >= fixedFrom.build[2];
      if (index < 0 && !fromLine) throw this.fail(safe, `${entry.update.cu} (${entry.update.build}) is not a CU that has the fix: no <update> for it and not from fixedFrom on`, 'build');
      const fixedBuild = index >= 0 ? parsedUpdates[index] : fixedFrom?.build;
      if (fixedBuild !== undefined && compareBuilds(entry.build, fixedBuild) < 0) {
        throw this.fail(safe, `${entry.update.build} is before the fixed build ${formatBuild(fixedBuild)} of ${entry.update.cu}`, 'build');
      }
      safeToRemoveFrom.push(entry.update);
    }
    return {
      product,
      allFixed,
      fixedFrom: fixedFrom === null ? null : formatBuild(fixedFrom.build),
      fixedFromCu: fixedFrom === null ? null : fixedFrom.cu,
      updates,
      safeToRemoveFrom,
    };
  }

  /** Reads cu, build (and label) of <update>, <fixedFrom> or <safeToRemove>, checking the build belongs to the product. */
  private fixedBuild(element: XmlElement, product: Product, withLabel: boolean): { update: FixedUpdate; build: Build } {
    const cu = this.attr(element, 'cu');
    if (!/^(?:RTM|SP[1-9]|CU[1-9][0-9]?)$/.test(cu)) throw this.fail(element, `cu "${cu}" is not a CU name like CU12, SP1 or RTM`, 'cu');
    const build = this.build(element, 'build');
    const text = formatBuild(build);
    const owner = productOfBuild(build);
    if (!text.startsWith(PRODUCT_PREFIX[product]) || (owner !== null && owner !== product)) {
      throw this.fail(element, `build ${text} is not an Exchange ${product} build`, 'build');
    }
    let label = '';
    if (withLabel) {
      label = this.attr(element, 'label');
      if (!/^[A-Z][a-z]{2}[0-9]{2}(?:SU|HU)(?:v[0-9])?$/.test(label)) {
        throw this.fail(element, `label "${label}" is not an update label like Nov22SU, Apr24HU or Nov24SUv2`, 'label');
      }
    }
    return { update: { cu, build: text, update: label }, build };
  }

  private readWindowsFix(element: XmlElement): WindowsFix {
    const file = this.attr(element, 'file');
    if (!/^[A-Za-z0-9_.-]+$/.test(file)) throw this.fail(element, `file "${file}" is not a plain file name`, 'file');
    const versions: WindowsFixVersion[] = [];
    for (const windows of this.childrenNamed(element, 'windows')) {
      const osVersionPrefix = this.threeParts(windows, 'osVersion');
      const fileVersionPrefix = this.threeParts(windows, 'fileVersion');
      const notAffected = this.bool(windows, 'notAffected', false);
      let fixed: string | null = null;
      if (Object.hasOwn(windows.attributes, 'fixed')) {
        if (notAffected) throw this.fail(windows, 'a Windows version is either fixed from a file version or notAffected, not both', 'fixed');
        fixed = formatBuild(this.build(windows, 'fixed'));
        if (!fixed.startsWith(`${fileVersionPrefix}.`)) throw this.fail(windows, `fixed ${fixed} does not start with fileVersion ${fileVersionPrefix}`, 'fixed');
      } else if (!notAffected) {
        throw this.fail(windows, 'missing attribute fixed (or notAffected="true")');
      }
      if (versions.some((v) => v.osVersionPrefix === osVersionPrefix)) throw this.fail(windows, `osVersion ${osVersionPrefix} is listed twice`, 'osVersion');
      versions.push({ os: this.attr(windows, 'name'), osVersionPrefix, fileVersionPrefix, fixed });
    }
    return { file, update: this.attr(element, 'update'), versions };
  }

  private readActions(element: XmlElement, products: Product[], roles: Role[]): Action[] {
    const container = this.optionalChild(element, 'actions');
    if (container === null) return [];
    if (container.children.length === 0) throw this.fail(container, '<actions> is empty: leave it out when only the update helps');
    return container.children.map((child): Action => {
      switch (child.name) {
        case 'inbound-rule':
          return this.readInboundRule(child);
        case 'outbound-rule':
          return this.readOutboundRule(child);
        case 'app-pool': {
          const name = this.attr(child, 'name');
          if (!EXCHANGE_NAME.test(name)) {
            throw this.fail(child, `app pool "${name}" is outside the vocabulary: only Exchange's app pools (MSExchange*) can be stopped`, 'name');
          }
          return { kind: 'app-pool', name, autoStart: false };
        }
        case 'service': {
          const name = this.attr(child, 'name');
          if (!EXCHANGE_NAME.test(name)) {
            throw this.fail(child, `service "${name}" is outside the vocabulary: only Exchange's services (MSExchange*) can be stopped`, 'name');
          }
          const only = this.productList(child, 'products', false);
          const onRoles = this.roleList(child, 'roles', false);
          const strayProduct = only.find((p) => !products.includes(p));
          if (strayProduct !== undefined) throw this.fail(child, `product ${strayProduct} is not in the mitigation's <appliesTo products>`, 'products');
          const strayRole = onRoles.find((r) => !roles.includes(r));
          if (strayRole !== undefined) throw this.fail(child, `role ${strayRole} is not in the mitigation's <appliesTo roles>`, 'roles');
          return { kind: 'service', name, products: only, roles: onRoles, startType: 'Disabled' };
        }
        case 'remove-global-module': {
          const name = this.attr(child, 'name');
          if (!/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/.test(name)) throw this.fail(child, `"${name}" is not an IIS module name`, 'name');
          const moduleRule = globalModuleProblem(name);
          if (moduleRule !== null) throw this.fail(child, moduleRule, 'name');
          return { kind: 'remove-global-module', name };
        }
        default:
          throw this.fail(child, `unknown action <${child.name}>`);
      }
    });
  }

  private readInboundRule(element: XmlElement): InboundRuleAction {
    const location = this.location(element);
    const name = this.ruleName(element, 'name');
    const matchUrl = this.regex(element, 'matchUrl');
    const logicalGrouping = this.oneOf(element, 'logicalGrouping', GROUPINGS, 'MatchAll');
    const stopProcessing = this.bool(element, 'stopProcessing', false);
    const conditions = this.childrenNamed(element, 'condition').map((c) => this.readCondition(c));
    const actionElement = this.child(element, 'action');
    const type = this.attr(actionElement, 'type');
    const statusAttrs = ['statusCode', 'statusReason', 'statusDescription'];
    if (type === 'AbortRequest') {
      const extra = statusAttrs.find((a) => Object.hasOwn(actionElement.attributes, a));
      if (extra !== undefined) throw this.fail(actionElement, `${extra} belongs to CustomResponse, not AbortRequest`, extra);
      return { kind: 'inbound-rule', location, name, matchUrl, logicalGrouping, conditions, action: { type: 'AbortRequest' }, stopProcessing };
    }
    if (type === 'CustomResponse') {
      const statusCode = this.attr(actionElement, 'statusCode');
      if (statusCode !== '403') throw this.fail(actionElement, `statusCode "${statusCode}" is outside the vocabulary: a CustomResponse action blocks with 403`, 'statusCode');
      const statusReason = this.attr(actionElement, 'statusReason');
      const statusDescription = this.attr(actionElement, 'statusDescription');
      return {
        kind: 'inbound-rule',
        location,
        name,
        matchUrl,
        logicalGrouping,
        conditions,
        action: { type: 'CustomResponse', statusCode: 403, statusReason, statusDescription },
        stopProcessing,
      };
    }
    throw this.fail(actionElement, `rule action ${type} is outside the vocabulary: inbound rules only block (AbortRequest, or CustomResponse with statusCode 403)`, 'type');
  }

  private readOutboundRule(element: XmlElement): OutboundRuleAction {
    const location = this.location(element);
    const name = this.ruleName(element, 'name');
    const serverVariable = this.attr(element, 'serverVariable');
    if (!/^RESPONSE_[A-Za-z][A-Za-z0-9_]*$/.test(serverVariable)) {
      throw this.fail(element, `serverVariable "${serverVariable}" is outside the vocabulary: outbound rules only append to a response header (RESPONSE_...)`, 'serverVariable');
    }
    const pattern = this.regex(element, 'pattern');
    const value = this.attr(element, 'value');
    if (pattern !== '(.*)' || !value.startsWith('{R:1}') || value === '{R:1}') {
      throw this.fail(element, 'outbound rules only append to a header: pattern "(.*)" and a value that starts with {R:1} and adds to it', pattern !== '(.*)' ? 'pattern' : 'value');
    }
    const variableRule = outboundVariableProblem(serverVariable);
    if (variableRule !== null) throw this.fail(element, variableRule, 'serverVariable');
    const valueRule = outboundValueProblem(value);
    if (valueRule !== null) throw this.fail(element, valueRule, 'value');
    const preconditionElement = this.child(element, 'precondition');
    const precondition = {
      name: this.ruleName(preconditionElement, 'name'),
      logicalGrouping: this.oneOf(preconditionElement, 'logicalGrouping', GROUPINGS, 'MatchAll'),
      conditions: this.childrenNamed(preconditionElement, 'condition').map((c) => this.readCondition(c)),
    };
    const recognisePrefixes = this.childrenNamed(element, 'recognisePrefix').map((p) => textOf(p));
    return { kind: 'outbound-rule', location, name, serverVariable, pattern, value, precondition, recognisePrefixes };
  }

  private readCondition(element: XmlElement): RuleCondition {
    const input = this.attr(element, 'input');
    if (!SERVER_VARIABLE_INPUT.test(input)) {
      throw this.fail(element, `input "${input}" is not a server variable like {HTTP_COOKIE} or {UrlDecode:{REQUEST_URI}}`, 'input');
    }
    return {
      input,
      pattern: this.regex(element, 'pattern'),
      negate: this.bool(element, 'negate', false),
      ignoreCase: this.bool(element, 'ignoreCase', true),
    };
  }

  private readProbes(element: XmlElement, actions: Action[]): Probe[] {
    const container = this.optionalChild(element, 'probes');
    const hasInbound = actions.some((a) => a.kind === 'inbound-rule');
    const hasOutbound = actions.some((a) => a.kind === 'outbound-rule');
    if (container === null) {
      if (hasInbound || hasOutbound) throw this.fail(element, 'missing <probes>: URL Rewrite rules are judged by attack and ordinary probes');
      return [];
    }
    if (!hasInbound && !hasOutbound) throw this.fail(container, 'probes judge URL Rewrite rules, and this mitigation has none');
    const probes = this.childrenNamed(container, 'probe').map((p) => this.readProbe(p, hasOutbound));
    for (const kind of ['attack', 'ordinary'] as const) {
      if (!probes.some((p) => p.kind === kind)) throw this.fail(container, `no probe of kind ${kind}: a rule needs at least one attack it stops and one ordinary request it lets through`);
    }
    return probes;
  }

  private readProbe(element: XmlElement, outbound: boolean): Probe {
    const kind = this.oneOf(element, 'kind', PROBE_KINDS);
    const url = this.attr(element, 'url');
    if (!url.startsWith('/') || /[\s\x00-\x1f\x7f#]/.test(url)) {
      throw this.fail(element, `url "${url}" must be a path and query as sent on the wire: starting with /, no spaces, control characters or #`, 'url');
    }
    const method = attributeOf(element, 'method') ?? 'GET';
    if (!/^[A-Z]{1,16}$/.test(method)) throw this.fail(element, `method "${method}" is not an HTTP method`, 'method');
    const site = attributeOf(element, 'site') ?? 'Default Web Site';
    if (!/^[A-Za-z0-9][A-Za-z0-9 ._-]*$/.test(site)) throw this.fail(element, `site "${site}" is not an IIS site name`, 'site');
    const headers = this.headers(element);
    const responseElement = this.optionalChild(element, 'response');
    const response = responseElement === null ? null : { contentType: this.attr(responseElement, 'contentType'), headers: this.headers(responseElement) };
    const expectElement = this.optionalChild(element, 'expectHeader');
    let expectHeader: Probe['expectHeader'] = null;
    if (expectElement !== null) {
      if (response === null) throw this.fail(expectElement, '<expectHeader> judges a response: add <response contentType="...">');
      expectHeader = { name: this.headerName(expectElement), contains: this.attr(expectElement, 'contains') };
    }
    if (outbound && (kind === 'attack' || kind === 'bypass') && (response === null || expectHeader === null)) {
      throw this.fail(element, 'an attack probe of an outbound rule needs <response> and <expectHeader>');
    }
    return { kind, description: this.attr(element, 'description'), site, url, method, headers, response, expectHeader };
  }

  private headers(element: XmlElement): Record<string, string> {
    const headers: Record<string, string> = {};
    for (const header of this.childrenNamed(element, 'header')) {
      const name = this.headerName(header);
      if (Object.keys(headers).some((n) => n.toLowerCase() === name.toLowerCase())) throw this.fail(header, `header ${name} is given twice`, 'name');
      const value = this.attr(header, 'value');
        if (/[\x00-\x08\x0a-\x1f\x7f]/.test(value)) throw this.fail(header, 'header value has control characters', 'value');
      headers[name] = value;
    }
    return headers;
  }

  // ---- attribute helpers ----------------------------------------------------------------------

  private attr(element: XmlElement, name: string): string {
    const value = attributeOf(element, name);
    if (value === undefined) throw this.fail(element, `missing attribute ${name}`);
    return value;
  }

  private oneOf<T extends string>(element: XmlElement, name: string, allowed: readonly T[], fallback?: T): T {
    const value = attributeOf(element, name);
    if (value === undefined && fallback !== undefined) return fallback;
    const found = allowed.find((a) => a === value);
    if (found === undefined) throw this.fail(element, `${name} "${value ?? ''}" is not one of ${allowed.join(', ')}`, name);
    return found;
  }

  private bool(element: XmlElement, name: string, fallback: boolean): boolean {
    const value = attributeOf(element, name);
    if (value === undefined) return fallback;
    if (value === 'true') return true;
    if (value === 'false') return false;
    throw this.fail(element, `${name} "${value}" is not true or false`, name);
  }

  private date(element: XmlElement, name: string): string {
    const value = this.attr(element, name);
    const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
    const time = Date.parse(`${value}T00:00:00Z`);
    // A month 00 or day 32 makes an invalid Date, whose toISOString throws: check the number first.
    const valid = match !== null && !Number.isNaN(time) && new Date(time).toISOString().slice(0, 10) === value;
    if (!valid) throw this.fail(element, `${name} "${value}" is not a date (YYYY-MM-DD)`, name);
    return value;
  }

  private build(element: XmlElement, name: string): Build {
    const value = this.attr(element, name);
    const build = parseBuild(value);
    if (build === null) throw this.fail(element, 'not a build number', name);
    return build;
  }

  private threeParts(element: XmlElement, name: string): string {
    const value = this.attr(element, name);
    if (!/^\d{1,5}\.\d{1,5}\.\d{1,5}$/.test(value)) throw this.fail(element, `${name} "${value}" is not three numbers like 10.0.17763`, name);
    return value.split('.').map(Number).join('.');
  }

  private product(element: XmlElement, name: string): Product {
    return this.oneOf(element, name, PRODUCTS);
  }

  private productList(element: XmlElement, name: string, required: boolean): Product[] {
    return this.list(element, name, PRODUCTS, required);
  }

  private roleList(element: XmlElement, name: string, required: boolean): Role[] {
    return this.list(element, name, ROLES, required);
  }

  private list<T extends string>(element: XmlElement, name: string, allowed: readonly T[], required: boolean): T[] {
    const value = attributeOf(element, name);
    if (value === undefined) return [];
    const words = value.split(/\s+/).filter((w) => w !== '');
    if (required && words.length === 0) throw this.fail(element, `${name} is empty`, name);
    const result: T[] = [];
    for (const word of words) {
      const found = allowed.find((a) => a === word);
      if (found === undefined) throw this.fail(element, `${name}: unknown ${name === 'roles' ? 'role' : 'product'} "${word}" (known: ${allowed.join(', ')})`, name);
      if (result.includes(found)) throw this.fail(element, `${name}: ${word} is listed twice`, name);
      result.push(found);
    }
    return result;
  }

  private regex(element: XmlElement, name: string): string {
    const pattern = this.attr(element, name);
    try {
      new RegExp(pattern);
    } catch (error) {
      throw this.fail(element, `${name} "${pattern}" is not a valid regular expression (${(error as Error).message})`, name);
    }
    return pattern;
  }

  private location(element: XmlElement): string {
    const location = this.attr(element, 'location');
    const locationRule = locationProblem(location);
    if (locationRule !== null) throw this.fail(element, locationRule, 'location');
    if (!/^Default Web Site(?:\/[A-Za-z0-9_.-]+)*$/.test(location)) {
      throw this.fail(element, `location "${location}" is outside the vocabulary: rules go to "Default Web Site" or a path below it ("Default Web Site/owa")`, 'location');
    }
    return location;
  }

  private ruleName(element: XmlElement, name: string): string {
    const value = this.attr(element, name);
    if (!value.startsWith(RULE_NAME_PREFIX) || !/^[A-Za-z0-9 ._-]+$/.test(value) || value.length > 128) {
      throw this.fail(element, `${name} "${value}" must start with "${RULE_NAME_PREFIX}" and use letters, digits, spaces, dots, hyphens`, name);
    }
    const key = value.toLowerCase();
    const first = this.ruleNames.get(key);
    if (first !== undefined && first !== element) {
      throw this.fail(element, `${name} "${value}" is already used at line ${this.lineOf(first)}: a duplicate rule name is an HTTP 500.19 for the whole site`, name);
    }
    this.ruleNames.set(key, element);
    return value;
  }

  private headerName(element: XmlElement): string {
    const name = this.attr(element, 'name');
    if (!HEADER_NAME.test(name)) throw this.fail(element, `"${name}" is not an HTTP header name`, 'name');
    return name;
  }

  // ---- navigation -----------------------------------------------------------------------------

  private childrenNamed(element: XmlElement, tag: string): XmlElement[] {
    return element.children.filter((c) => c.name === tag);
  }

  private child(element: XmlElement, tag: string): XmlElement {
    const found = element.children.find((c) => c.name === tag);
    if (found === undefined) throw this.fail(element, `missing element <${tag}>`);
    return found;
  }

  private optionalChild(element: XmlElement, tag: string): XmlElement | null {
    return element.children.find((c) => c.name === tag) ?? null;
  }

  // ---- errors ---------------------------------------------------------------------------------

  private lineOf(element: XmlElement): number {
    return this.doc === null ? element.line : lineAt(this.doc, element.start);
  }

  /** An inputError at the element (or its attribute's line) with the element path. */
  private fail(element: XmlElement, reason: string, attr?: string): Error {
    const line = this.doc !== null && attr !== undefined ? attributeLine(this.doc, element, attr) : element.line;
    return inputError(`${this.file} line ${line}: ${this.path(element, attr)}: ${reason}`);
  }

  private path(element: XmlElement, attr: string | undefined): string {
    const segments: string[] = [];
    for (let e: XmlElement | null = element; e !== null; e = e.parent) {
      if (e.parent === null && e !== element) break;
      segments.unshift(this.segment(e, e === element ? attr : undefined));
    }
    return segments.join('/');
  }

  private segment(element: XmlElement, attr: string | undefined): string {
    const name = attr !== undefined && Object.hasOwn(element.attributes, attr) ? attr : KEY_ATTRIBUTE[element.name];
    const value = name === undefined ? undefined : attributeOf(element, name);
    return value === undefined ? `<${element.name}>` : `<${element.name} ${name}="${shorten(value)}">`;
  }
}

/** An attribute's decoded value, undefined when the element does not carry it. */
function attributeOf(element: XmlElement, name: string): string | undefined {
  return Object.hasOwn(element.attributes, name) ? element.attributes[name] : undefined;
}

/** An element's text with whitespace runs collapsed and the ends trimmed, as text-only elements are read. */
function textOf(element: XmlElement): string {
  return element.text.replace(/\s+/g, ' ').trim();
}

function shorten(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}
