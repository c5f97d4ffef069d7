/**
 * The closed vocabulary's value rules, which hold even for a correctly signed catalog: they are what
 * a stolen signing key can still not make exmit do (docs/feeds.md, "What a signature protects
 * against"). Each check returns the reason a value breaks its rule, or null; the parser names the
 * file, line and element.
 */

/** The only response header an outbound rule may append to. */
export const OUTBOUND_SERVER_VARIABLES: readonly string[] = ['RESPONSE_Content_Security_Policy'];

/** The only IIS global modules a catalog may remove; an exmit release extends the list. */
export const REMOVABLE_GLOBAL_MODULES: readonly string[] = ['TokenCacheModule'];

/** The only IIS site rules may be written to. */
export const RULE_SITE = 'Default Web Site';

/** The virtual directories of Exchange's front end below the site that rules may be written to (IIS matches them ignoring case). */
export const RULE_PATHS: readonly string[] = ['owa', 'ecp', 'EWS', 'Autodiscover', 'mapi', 'Microsoft-Server-ActiveSync', 'OAB', 'PowerShell', 'Rpc'];

/** Why an outbound rule's server variable is outside the vocabulary, or null. */
export function outboundVariableProblem(serverVariable: string): string | null {
  if (OUTBOUND_SERVER_VARIABLES.includes(serverVariable)) return null;
  return `serverVariable "${serverVariable}" is outside the vocabulary: outbound rules only append to Content-Security-Policy (${OUTBOUND_SERVER_VARIABLES.join(', ')})`;
}

/** Why an outbound rule's value is outside the vocabulary, or null: `{R:1}` then literal text, without braces (no server variables) or control characters. */
export function outboundValueProblem(value: string): string | null {
  const rule = 'the value is {R:1} followed by literal text, with no { or } (no server variables or back-references) and no control characters';
  if (!value.startsWith('{R:1}') || value.length === '{R:1}'.length) return `value "${value}" is outside the vocabulary: ${rule}`;
  const rest = value.slice('{R:1}'.length);
  if (/[{}]/.test(rest)) return `value "${value}" is outside the vocabulary: ${rule}`;
  if (/[\x00-\x1f\x7f]/.test(rest)) return `value has control characters: ${rule}`;
  return null;
}

/** Why removing this global module is outside the vocabulary, or null. */
export function globalModuleProblem(name: string): string | null {
  if (REMOVABLE_GLOBAL_MODULES.includes(name)) return null;
  return `module "${name}" is outside the vocabulary: only ${REMOVABLE_GLOBAL_MODULES.join(', ')} may be removed (an exmit release extends the list)`;
}

/** Why a rule location is outside the vocabulary, or null: "Default Web Site" or "Default Web Site/<one of RULE_PATHS>". */
export function locationProblem(location: string): string | null {
  if (location === RULE_SITE) return null;
  const prefix = `${RULE_SITE}/`;
  if (location.startsWith(prefix)) {
    const rest = location.slice(prefix.length);
    if (RULE_PATHS.some((p) => p.toLowerCase() === rest.toLowerCase())) return null;
    const segments = rest.split('/');
    if (segments.some((s) => s === '.' || s === '..')) {
      return `location "${location}" is outside the vocabulary: "." and ".." segments are not allowed`;
    }
  }
  return `location "${location}" is outside the vocabulary: rules go to "${RULE_SITE}" or "${RULE_SITE}/" followed by one of ${RULE_PATHS.join(', ')}`;
}

/**
 * Why a serial is outside its rule, or null: YYYYMMDDNN with a real date that is no later than the
 * catalog's `published` date and, when `now` is given, no later than tomorrow (UTC). So one stolen
 * key cannot set a serial that blocks every later catalog.
 */
export function serialProblem(serial: string, published: string, now: Date | null): string | null {
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})$/.exec(serial);
  const rule = 'a serial is YYYYMMDDNN, a real date no later than published and than tomorrow, and a two-digit number';
  if (match === null) return `serial "${serial}" is not of the form YYYYMMDDNN: ${rule}`;
  const day = `${match[1]}-${match[2]}-${match[3]}`;
  const time = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(time) || new Date(time).toISOString().slice(0, 10) !== day) return `serial "${serial}": ${day} is not a date: ${rule}`;
  if (day > published) return `serial "${serial}": its date ${day} is after published ${published}: ${rule}`;
  if (now !== null) {
    const tomorrow = new Date(now.getTime() + 86_400_000).toISOString().slice(0, 10);
    if (day > tomorrow) return `serial "${serial}": its date ${day} is after tomorrow (${tomorrow}, UTC): ${rule}`;
  }
  return null;
}

/** The index of the first CDATA section opener in any letter case (`<![CDATA[`, `<![cdata[`), or -1. */
export function cdataIndex(text: string): number {
  const match = /<!\[\s*cdata\s*\[/i.exec(text);
  return match === null ? -1 : match.index;
}
