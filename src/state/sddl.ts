/**
 * Windows security descriptors in SDDL, the text form `Get-Acl` gives as `.Sddl`: parsed here, in
 * TypeScript, because .NET's own parser (RawSecurityDescriptor) only runs on Windows, and the
 * judgement of an ACL must be testable everywhere. Only what exmit judges is kept: the owner, the
 * DACL's flags and its allow and deny entries. The format: learn.microsoft.com "Security Descriptor
 * String Format" and "ACE Strings".
 */
import { inputError } from '../errors.ts';

/** Well-known SIDs exmit names. */
export const SID = {
  administrators: 'S-1-5-32-544',
  users: 'S-1-5-32-545',
  system: 'S-1-5-18',
  everyone: 'S-1-1-0',
  authenticatedUsers: 'S-1-5-11',
  creatorOwner: 'S-1-3-0',
  creatorGroup: 'S-1-3-1',
  ownerRights: 'S-1-3-4',
} as const;

/** The SDDL two-letter account aliases that stand for a fixed SID (domain-relative ones are kept as "alias:XX"). */
const SID_ALIASES: Readonly<Record<string, string>> = {
  AC: 'S-1-15-2-1', AN: 'S-1-5-7', AO: 'S-1-5-32-548', AU: SID.authenticatedUsers, BA: SID.administrators, BG: 'S-1-5-32-546',
  BO: 'S-1-5-32-551', BU: SID.users, CG: SID.creatorGroup, CO: SID.creatorOwner, ED: 'S-1-5-9', ER: 'S-1-5-32-573',
  IS: 'S-1-5-32-568', IU: 'S-1-5-4', LS: 'S-1-5-19', LU: 'S-1-5-32-559', MU: 'S-1-5-32-558', NO: 'S-1-5-32-556',
  NS: 'S-1-5-20', NU: 'S-1-5-2', OW: SID.ownerRights, PO: 'S-1-5-32-550', PS: 'S-1-5-10', PU: 'S-1-5-32-547',
  RC: 'S-1-5-12', RD: 'S-1-5-32-555', RE: 'S-1-5-32-552', RM: 'S-1-5-32-580', RU: 'S-1-5-32-554', SO: 'S-1-5-32-549',
  SU: 'S-1-5-6', SY: SID.system, WD: SID.everyone, WR: 'S-1-5-33',
};

const SID_NAMES: Readonly<Record<string, string>> = {
  [SID.administrators]: 'BUILTIN\\Administrators',
  [SID.users]: 'BUILTIN\\Users',
  [SID.system]: 'NT AUTHORITY\\SYSTEM',
  [SID.everyone]: 'Everyone',
  [SID.authenticatedUsers]: 'NT AUTHORITY\\Authenticated Users',
  [SID.creatorOwner]: 'CREATOR OWNER',
  [SID.creatorGroup]: 'CREATOR GROUP',
  [SID.ownerRights]: 'OWNER RIGHTS',
  'S-1-5-32-546': 'BUILTIN\\Guests',
  'S-1-5-4': 'NT AUTHORITY\\INTERACTIVE',
  'S-1-5-32-568': 'BUILTIN\\IIS_IUSRS',
};

/** Access rights named by SDDL's two-letter codes. */
const RIGHTS: Readonly<Record<string, number>> = {
  GA: 0x10000000, GR: 0x80000000, GW: 0x40000000, GX: 0x20000000,
  RC: 0x00020000, SD: 0x00010000, WD: 0x00040000, WO: 0x00080000,
  RP: 0x10, WP: 0x20, CC: 0x1, DC: 0x2, LC: 0x4, SW: 0x8, LO: 0x80, DT: 0x40, CR: 0x100,
  FA: 0x001f01ff, FR: 0x00120089, FW: 0x00120116, FX: 0x001200a0,
  KA: 0x000f003f, KR: 0x00020019, KW: 0x00020006, KX: 0x00020019,
  NR: 0x1, NW: 0x2, NX: 0x4,
};

const ACE_FLAGS: Readonly<Record<string, number>> = {
  OI: 0x1, CI: 0x2, NP: 0x4, IO: 0x8, ID: 0x10, CR: 0x20, SA: 0x40, TP: 0x40, FA: 0x80,
};

/** Access mask bits of files and folders that let a principal change the object, its ACL or owner. */
export const WRITE_RIGHTS = 0x2 | 0x4 | 0x10 | 0x40 | 0x100 | 0x10000 | 0x40000 | 0x80000 | 0x40000000 | 0x10000000;
/** Access mask bits that let a principal read a file's content. */
export const READ_DATA_RIGHTS = 0x1 | 0x80000000 | 0x10000000;
/** The inherit-only ACE flag: the entry applies to children, not to the object itself. */
export const INHERIT_ONLY = 0x8;

/** One entry of a DACL. */
export interface Ace {
  allow: boolean;
  /** A SID ("S-1-5-32-544"), or "alias:XX" for a domain-relative alias. */
  sid: string;
  mask: number;
  flags: number;
}

/** What exmit reads of a security descriptor. */
export interface SecurityDescriptor {
  /** The owner SID, or null when the descriptor has none. */
  owner: string | null;
  /** The DACL's entries, or null for a null DACL (everyone has every right). */
  dacl: Ace[] | null;
  /** The DACL is protected from inheritance (flag P). */
  protected: boolean;
}

/** A SID's display name: the well-known name with the SID, or the SID alone. */
export function sidName(sid: string): string {
  const name = SID_NAMES[sid];
  return name === undefined ? sid : `${name} (${sid})`;
}

/** Parses an SDDL string; a malformed one is an inputError naming `what`. */
export function parseSddl(text: string, what: string): SecurityDescriptor {
  const fail = (reason: string) => inputError(`${what}: security descriptor "${text.length > 120 ? `${text.slice(0, 120)}...` : text}" cannot be read: ${reason}`);
  let owner: string | null = null;
  let dacl: Ace[] | null = null;
  let isProtected = false;
  let daclSeen = false;
  let i = 0;
  while (i < text.length) {
    if (/\s/.test(text[i] ?? '')) {
      i++;
      continue;
    }
    const section = text.slice(i, i + 2);
    i += 2;
    if (section === 'O:' || section === 'G:') {
      const match = /^(S-1-[0-9-]+|[A-Z]{2})/.exec(text.slice(i));
      if (match === null) throw fail(`no SID after ${section}`);
      if (section === 'O:') owner = sidOf(match[1] as string, fail);
      i += (match[1] as string).length;
    } else if (section === 'D:' || section === 'S:') {
      const flags = /^(?:NO_ACCESS_CONTROL|AI|AR|P)*/.exec(text.slice(i))?.[0] ?? '';
      i += flags.length;
      const aces: Ace[] = [];
      while (text[i] === '(') {
        const end = closingParen(text, i);
        if (end < 0) throw fail('an entry has no closing parenthesis');
        const ace = parseAce(text.slice(i + 1, end), fail);
        if (ace !== null) aces.push(ace);
        i = end + 1;
      }
      if (section === 'D:') {
        if (daclSeen) throw fail('two DACLs');
        daclSeen = true;
        isProtected = /P(?!_)/.test(flags.replace('NO_ACCESS_CONTROL', ''));
        dacl = flags.includes('NO_ACCESS_CONTROL') ? null : aces;
      }
    } else {
      throw fail(`unexpected "${section}" at position ${i - 2}`);
    }
  }
  return { owner, dacl: daclSeen ? dacl : null, protected: isProtected };
}

function closingParen(text: string, open: number): number {
  let depth = 0;
  for (let j = open; j < text.length; j++) {
    if (text[j] === '(') depth++;
    else if (text[j] === ')' && --depth === 0) return j;
  }
  return -1;
}

/** One "type;flags;rights;object;inherited object;sid[;condition]" entry; null for entry types a DACL judgement ignores (audit, label). */
function parseAce(body: string, fail: (reason: string) => Error): Ace | null {
  const fields = body.split(';');
  if (fields.length < 6) throw fail(`entry "(${body})" has ${fields.length} fields, not 6`);
  const [type, flagText, rightsText, , , sidText] = fields as [string, string, string, string, string, string];
  let allow: boolean;
  if (['A', 'OA', 'XA', 'ZA'].includes(type)) allow = true;
  else if (['D', 'OD', 'XD'].includes(type)) allow = false;
  else if (['AU', 'AL', 'OU', 'OL', 'ML', 'XU', 'RA', 'SP'].includes(type)) return null;
  else throw fail(`entry "(${body})" has an unknown type "${type}"`);
  return { allow, sid: sidOf(sidText, fail), mask: parseRights(rightsText, body, fail), flags: parseFlags(flagText, body, fail) };
}

function sidOf(text: string, fail: (reason: string) => Error): string {
  if (/^S-1-\d+(-\d+)*$/.test(text)) return text;
  if (/^[A-Z]{2}$/.test(text)) return SID_ALIASES[text] ?? `alias:${text}`;
  throw fail(`"${text}" is not a SID`);
}

function parseRights(text: string, body: string, fail: (reason: string) => Error): number {
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16) >>> 0;
  if (/^\d+$/.test(text)) return Number.parseInt(text, 10) >>> 0;
  if (!/^([A-Z]{2})*$/.test(text)) throw fail(`entry "(${body})" has unreadable rights "${text}"`);
  let mask = 0;
  for (let j = 0; j < text.length; j += 2) {
    const bits = RIGHTS[text.slice(j, j + 2)];
    if (bits === undefined) throw fail(`entry "(${body})" has an unknown right "${text.slice(j, j + 2)}"`);
    mask = (mask | bits) >>> 0;
  }
  return mask;
}

function parseFlags(text: string, body: string, fail: (reason: string) => Error): number {
  if (!/^([A-Z]{2})*$/.test(text)) throw fail(`entry "(${body})" has unreadable flags "${text}"`);
  let flags = 0;
  for (let j = 0; j < text.length; j += 2) {
    const bit = ACE_FLAGS[text.slice(j, j + 2)];
    if (bit === undefined) throw fail(`entry "(${body})" has an unknown flag "${text.slice(j, j + 2)}"`);
    flags |= bit;
  }
  return flags;
}
