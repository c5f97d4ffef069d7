/**
 * Changes a service's or an app pool's state inside an image's CliXml export (services.xml,
 * apppools.xml) by replacing only the values that change, so that every other byte stays and
 * putting the old values back gives the file exactly as it was. Top-level entries only: copies
 * nested under other services (DependentServices, ...) are snapshots and stay.
 */
import { inputError } from '../errors.ts';
import { parseXml, type XmlElement } from '../xml/document.ts';
import type { AppPoolState, ServiceState } from './changes.ts';
import type { AppPoolFact } from '../facts.ts';

/** Largest export edited (the same limit the engine reads with). */
const MAX_EXPORT_BYTES = 64 * 1024 * 1024;

// System.ServiceProcess.ServiceControllerStatus, ServiceStartMode, Microsoft.Web.Administration.ObjectState
const SERVICE_STATUS: Record<string, number> = { Stopped: 1, StartPending: 2, StopPending: 3, Running: 4, ContinuePending: 5, PausePending: 6, Paused: 7 };
const START_MODE: Record<string, number> = { Boot: 0, System: 1, Automatic: 2, Manual: 3, Disabled: 4 };
const POOL_STATE: Record<string, number> = { Starting: 0, Started: 1, Stopping: 2, Stopped: 3, Unknown: 4 };

interface Replacement {
  start: number;
  end: number;
  text: string;
}

/** Members (`N="..."` children of Props and MS) of a top-level CliXml object. */
function membersOf(obj: XmlElement): Map<string, XmlElement> {
  const members = new Map<string, XmlElement>();
  for (const bag of obj.children) {
    if (bag.name !== 'Props' && bag.name !== 'MS') continue;
    for (const m of bag.children) {
      const n = m.attributes['N'];
      if (n !== undefined && !members.has(n)) members.set(n, m);
    }
  }
  return members;
}

function textOf(el: XmlElement): string {
  return el.text.trim();
}

/** The replacements that set an enum member to `name` (its typed number and its text), or an error naming the member. */
function setEnum(file: string, what: string, member: XmlElement | undefined, name: string, numbers: Record<string, number>): Replacement[] {
  if (member === undefined) throw inputError(`${file}: ${what} has no value to change`);
  const number = numbers[name];
  if (number === undefined) throw new Error(`unknown enum value ${name}`);
  if (member.name === 'S') return [contentReplacement(member, name)];
  if (member.name === 'Obj') {
    const out: Replacement[] = [];
    for (const child of member.children) {
      if (child.name === 'ToString') out.push(contentReplacement(child, name));
      if (child.name === 'I32') out.push(contentReplacement(child, String(number)));
    }
    if (out.length > 0) return out;
  }
  if (member.name === 'I32') return [contentReplacement(member, String(number))];
  throw inputError(`${file}: ${what} is written as <${member.name}>, which exmit does not change in an image`, 'Collect the image again with "exmit collect".');
}

function contentReplacement(el: XmlElement, value: string): Replacement {
  if (el.closeStart === null) throw inputError(`element <${el.name}> on line ${el.line} is empty where a value is expected`);
  return { start: el.openEnd, end: el.closeStart, text: value };
}

function applyReplacements(text: string, replacements: Replacement[]): string {
  let out = text;
  for (const r of [...replacements].sort((a, b) => b.start - a.start)) out = out.slice(0, r.start) + r.text + out.slice(r.end);
  return out;
}

function topLevel(text: string, file: string, nameMembers: readonly string[], wanted: string): { obj: XmlElement; members: Map<string, XmlElement> } {
  const doc = parseXml(text, file, { kind: 'configuration file', maxBytes: MAX_EXPORT_BYTES, allowCdata: false });
  if (doc.root.name !== 'Objs') throw inputError(`${file}: not a CliXml export (root <${doc.root.name}>)`);
  for (const obj of doc.root.children) {
    if (obj.name !== 'Obj') continue;
    const members = membersOf(obj);
    for (const n of nameMembers) {
      const m = members.get(n);
      if (m !== undefined && m.name === 'S') {
        if (textOf(m).toLowerCase() === wanted.toLowerCase()) return { obj, members };
        break;
      }
    }
  }
  throw inputError(`${file}: no top-level entry for ${wanted}`);
}

function enumText(member: XmlElement | undefined, numbers: Record<string, number>): string | null {
  if (member === undefined) return null;
  const byNumber = (n: string): string | null => Object.entries(numbers).find(([, v]) => String(v) === n.trim())?.[0] ?? null;
  if (member.name === 'S') return textOf(member);
  if (member.name === 'I32') return byNumber(member.text);
  const typed = member.children.find((c) => c.name === 'I32');
  if (typed !== undefined) return byNumber(typed.text);
  const shown = member.children.find((c) => c.name === 'ToString');
  return shown === undefined ? null : textOf(shown);
}

/** A service's top-level Status and StartType in services.xml text (typed values over ToString, as the engine reads them); null when it has no entry. */
export function readServiceState(text: string, file: string, service: string): ServiceState | null {
  let found;
  try {
    found = topLevel(text, file, ['ServiceName', 'Name'], service);
  } catch {
    return null;
  }
  const status = enumText(found.members.get('Status'), SERVICE_STATUS);
  const startType = enumText(found.members.get('StartType'), START_MODE);
  return status === null || startType === null ? null : { status, startType };
}

/** An app pool's State and autoStart in apppools.xml text; null when it has no entry. */
export function readAppPoolState(text: string, file: string, pool: string): AppPoolState | null {
  let found;
  try {
    found = topLevel(text, file, ['Name'], pool);
  } catch {
    return null;
  }
  const state = enumText(found.members.get('State'), POOL_STATE);
  const auto = found.members.get('autoStart');
  if (state === null || auto === undefined) return null;
  return { state, autoStart: textOf(auto).toLowerCase() === 'true' };
}

/** services.xml with the named service's top-level Status and StartType set. */
export function setServiceState(text: string, file: string, service: string, state: ServiceState): string {
  const { members } = topLevel(text, file, ['ServiceName', 'Name'], service);
  return applyReplacements(text, [
    ...setEnum(file, `${service}'s Status`, members.get('Status'), state.status, SERVICE_STATUS),
    ...setEnum(file, `${service}'s StartType`, members.get('StartType'), state.startType, START_MODE),
  ]);
}

/** apppools.xml with the named pool's State and autoStart set. */
export function setAppPoolState(text: string, file: string, pool: string, state: AppPoolState): string {
  const { members } = topLevel(text, file, ['Name'], pool);
  const auto = members.get('autoStart');
  if (auto === undefined || (auto.name !== 'B' && auto.name !== 'S')) throw inputError(`${file}: ${pool}'s autoStart is not a boolean value exmit can change`);
  return applyReplacements(text, [...setEnum(file, `${pool}'s State`, members.get('State'), state.state, POOL_STATE), contentReplacement(auto, String(state.autoStart))]);
}

/** A new apppools.xml (what `Get-ChildItem IIS:\AppPools | Select-Object Name, State, autoStart, startMode | Export-Clixml` writes), for an image that had none. */
export function newAppPoolsXml(pools: readonly AppPoolFact[], newline: string): string {
  const esc = (v: string): string => v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const lines = ['<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04">'];
  pools.forEach((p, i) => {
    lines.push(`  <Obj RefId="${i}">`);
    if (i === 0) {
      lines.push('    <TN RefId="0">', '      <T>Selected.Microsoft.IIs.PowerShell.Framework.ConfigurationElement</T>', '      <T>System.Management.Automation.PSCustomObject</T>', '      <T>System.Object</T>', '    </TN>');
    } else {
      lines.push('    <TNRef RefId="0" />');
    }
    lines.push('    <MS>', `      <S N="Name">${esc(p.name)}</S>`, `      <S N="State">${esc(p.state)}</S>`, `      <B N="autoStart">${String(p.autoStart)}</B>`, `      <S N="startMode">${esc(p.startMode)}</S>`, '    </MS>', '  </Obj>');
  });
  lines.push('</Objs>');
  return lines.join(newline);
}
