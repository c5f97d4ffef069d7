/** Typed records of a parsed catalog (mitigations/README.md documents the XML they come from). */

/** Exchange products a mitigation can name. */
export type Product = '2013' | '2016' | '2019' | 'SE';
export const PRODUCTS: readonly Product[] = ['2013', '2016', '2019', 'SE'];

/** Server roles as `detect` reports them. */
export type Role = 'Mailbox' | 'ClientAccess' | 'EdgeTransport' | 'ManagementTools';
export const ROLES: readonly Role[] = ['Mailbox', 'ClientAccess', 'EdgeTransport', 'ManagementTools'];

/** One CU that received the fix in an update, with the first build that carries it. */
export interface FixedUpdate {
  /** "CU12", "SP1", "RTM" as the build list names the CU. */
  cu: string;
  /** First fixed build of that CU, four numbers ("15.2.1118.20"). */
  build: string;
  /** The update's label as the build list spells it ("Nov22SU"). */
  update: string;
}

/** When a product's builds are fixed: the brief's per-CU model. */
export interface ProductFix {
  product: Product;
  /** Every build of this product has the fix (SE for 2021/2022 issues). */
  allFixed: boolean;
  /** First build of the first CU that shipped with the fix ("fixed from"); null when none did. */
  fixedFrom: string | null;
  /** That CU's name ("CU13"); null when fixedFrom is null. */
  fixedFromCu: string | null;
  /** CUs that received the fix as an update. */
  updates: FixedUpdate[];
  /** Builds from which Microsoft no longer keeps the mitigation in place (owa-csp-xss: July 2026). */
  safeToRemoveFrom: FixedUpdate[];
}

/** Where Windows, not Exchange, carries the fix: the file version that shows it, per Windows build. */
export interface WindowsFix {
  /** The Windows file whose version decides ("cachtokn.dll"). */
  file: string;
  /** The Windows update that carries the fix, for messages ("October 2023 Windows security update"). */
  update: string;
  versions: WindowsFixVersion[];
}

/** One Windows version: how to recognise it and the first file version that has the fix. */
export interface WindowsFixVersion {
  /** Windows name ("Windows Server 2019"). */
  os: string;
  /** The first three parts of the Windows version that identify it ("10.0.17763"; Server 2012 is "6.2.9200"). */
  osVersionPrefix: string;
  /** The first three parts of the file's version on that Windows ("10.0.17763"; on Server 2012 the file carries 8.0.9200). */
  fileVersionPrefix: string;
  /** First fixed file version, or null when this Windows is not affected. */
  fixed: string | null;
}

/** A URL Rewrite condition. */
export interface RuleCondition {
  input: string;
  pattern: string;
  negate: boolean;
  ignoreCase: boolean;
}

/** A blocking inbound URL Rewrite rule (AbortRequest or CustomResponse 403). */
export interface InboundRuleAction {
  kind: 'inbound-rule';
  /** Location in applicationHost.config where exmit writes it ("Default Web Site"). */
  location: string;
  /** Rule name, carries the exmit prefix. */
  name: string;
  matchUrl: string;
  logicalGrouping: 'MatchAll' | 'MatchAny';
  conditions: RuleCondition[];
  action: { type: 'AbortRequest' } | { type: 'CustomResponse'; statusCode: 403; statusReason: string; statusDescription: string };
  stopProcessing: boolean;
}

/** An outbound rule that appends to a response header, with its precondition. */
export interface OutboundRuleAction {
  kind: 'outbound-rule';
  location: string;
  name: string;
  /** Server variable the rule matches and rewrites ("RESPONSE_Content_Security_Policy"). */
  serverVariable: string;
  pattern: string;
  value: string;
  precondition: { name: string; logicalGrouping: 'MatchAll' | 'MatchAny'; conditions: RuleCondition[] };
  /** Rule-name prefixes of other tools' forms whose content is not published (EEMS M2). */
  recognisePrefixes: string[];
}

/** Stop an Exchange app pool and keep it from starting. */
export interface AppPoolAction {
  kind: 'app-pool';
  name: string;
  autoStart: false;
}

/** Stop and disable an Exchange service, where it exists. */
export interface ServiceAction {
  kind: 'service';
  name: string;
  /** Only on these products (empty: all the mitigation applies to). */
  products: Product[];
  /** Only on servers with one of these roles (empty: any). */
  roles: Role[];
  startType: 'Disabled';
}

/** Remove a named IIS global module (restorable with its image attribute). */
export interface GlobalModuleRemovalAction {
  kind: 'remove-global-module';
  name: string;
}

/** The closed action vocabulary. */
export type Action = InboundRuleAction | OutboundRuleAction | AppPoolAction | ServiceAction | GlobalModuleRemovalAction;

/** A request (and, for outbound rules, a response) that the configuration is judged on. */
export interface Probe {
  /** attack: the published exploit shape; bypass: a known bypass shape; ordinary: must still pass. */
  kind: 'attack' | 'bypass' | 'ordinary';
  description: string;
  site: string;
  /** Path and query as sent on the wire, percent-encoding kept ("/autodiscover/autodiscover.json?@x.com/Powershell"). */
  url: string;
  method: string;
  headers: Record<string, string>;
  /** For outbound rules: the response the server would send. */
  response: { contentType: string; headers: Record<string, string> } | null;
  /** For outbound probes: the response header must (attack) or must not need to (ordinary) contain this. */
  expectHeader: { name: string; contains: string } | null;
}

/** One catalog entry. */
export interface Mitigation {
  id: string;
  title: string;
  cves: string[];
  severity: 'critical' | 'important' | 'moderate';
  description: string;
  references: string[];
  products: Product[];
  roles: Role[];
  /** The feature the mitigation stops, or null when it breaks none. */
  breaks: string | null;
  /** Side effects that do not stop a feature (calendar printing, IIS recycles). */
  sideEffects: string[];
  /** Why a product is not applicable though listed elsewhere (owa-csp-xss on 2013). */
  notApplicable: { product: Product; reason: string }[];
  /** Why only the update helps on a product (null: every product) although the mitigation applies there (no UM services on 2019; OWASSRF). */
  patchOnly: { product: Product | null; reason: string }[];
  fix: { kind: 'exchange'; products: ProductFix[] } | { kind: 'windows'; windows: WindowsFix };
  probes: Probe[];
  actions: Action[];
}

/** A parsed, validated catalog. */
export interface Catalog {
  serial: number;
  published: string;
  expires: string;
  /** semver range of exmit versions that can use it. */
  requires: string;
  mitigations: Mitigation[];
}
