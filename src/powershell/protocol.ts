/**
 * The engine protocol, one place: every operation with its request and result types, its default
 * timeout, and a hand-written check of its result at the boundary (docs/architecture.md, "Engine
 * protocol"). Nothing the engine sends reaches the rest of exmit unchecked.
 */
import type { AppPoolFact, ConfigFileFact, FileVersionFact, OsFact, RegistryKey, ServerFacts, ServiceFact } from '../facts.ts';
import type { PathSecurity, WindowsIdentity } from '../state/windows-acl.ts';
import { decodeText, sha256Of } from '../text/encoding.ts';

/** Where a request is aimed: the live server or a server image folder. */
export type EngineTarget = { kind: 'local' } | { kind: 'image'; path: string };

/** The engine's preflight answer. */
export interface Preflight {
  psVersion: string;
  edition: string;
  platform: string;
  is64BitProcess: boolean;
  elevated: boolean | null;
  languageMode: string;
  executionPolicy: string;
}

/** The request fields of each operation (the door adds `id` and `op`). */
export interface Requests {
  preflight: { target: EngineTarget };
  /** `services`: the service names the run can ask about; absent: all. */
  gather: { target: EngineTarget; services?: readonly string[] };
  readFiles: { target: EngineTarget; paths: readonly string[] };
  collect: { target: EngineTarget; out: string };
  whoami: Record<string, never>;
  security: { paths: readonly string[] };
  /** `data`: base64 bytes of a file; null for a folder. */
  createSecure: { path: string; kind: 'folder' | 'file'; sddl: string; data: string | null };
  winHttpSettings: Record<string, never>;
  /** Apply and rollback (src/apply): the run's lock, its state folder, and the journaled execution of steps. */
  lock: { target: EngineTarget; runId: string };
  unlock: { target: EngineTarget; runId: string };
  readState: { target: EngineTarget };
  readBlob: { target: EngineTarget; sha256: string };
  execute: {
    target: EngineTarget;
    runId: string;
    mode: 'apply' | 'rollback' | 'repair' | 'undo';
    catalogSerial: number;
    plan: unknown;
    steps: readonly unknown[];
    ledger: { data: string } | null;
    fault: unknown;
  };
  exit: Record<string, never>;
}

/** The checked result of each operation. */
export interface Results {
  preflight: Preflight;
  /** applicationHost.config arrives as bytes and is decoded here (ConfigFileFact). */
  gather: ServerFacts;
  readFiles: { files: ConfigFileFact[] };
  /** `skipped`: files and folders that could not be read, with why (recorded, not fatal). */
  collect: { written: string[]; skipped: { path: string; reason: string }[] };
  whoami: WindowsIdentity;
  security: { entries: PathSecurity[] };
  /** The path created. */
  createSecure: { created: string };
  /** The registry value's base64, null when absent or off Windows. */
  winHttpSettings: { value: string | null };
  lock: { lock: string; staleCleared: unknown };
  unlock: Record<string, unknown>;
  /** The state folder: the ledger and journals as bytes (checked and decoded by src/apply). */
  readState: { ledger: StateFile | null; journals: (StateFile & { name: string })[]; files: string[]; ignored: string[] };
  readBlob: { data: string | null };
  execute: { steps: { index: number; prior: unknown; after: unknown }[]; journal: string };
  exit: Record<string, never>;
}

/** A file of the state folder as the engine sends it: base64 bytes and their SHA-256 (checked). */
export interface StateFile {
  data: Uint8Array;
  sha256: string;
}

/** Every operation's name. */
export type OpName = keyof Requests;

/** A progress event the engine sends while it works on a request. */
export interface EngineEvent {
  kind: string;
  message: string;
}

/** Thrown by a check: where in the result, what was expected, what came. */
export class ShapeError extends Error {
  readonly at: string;

  constructor(at: string, expected: string, value: unknown) {
    super(`${at} should be ${expected}, not ${describe(value)}`);
    this.name = 'ShapeError';
    this.at = at;
  }
}

/** Checks an unknown value at a path and returns it typed. */
export type Check<T> = (value: unknown, at: string) => T;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

const str: Check<string> = (v, at) => {
  if (typeof v !== 'string') throw new ShapeError(at, 'a string', v);
  return v;
};
const bool: Check<boolean> = (v, at) => {
  if (typeof v !== 'boolean') throw new ShapeError(at, 'true or false', v);
  return v;
};
function oneOf<T extends string>(...values: T[]): Check<T> {
  return (v, at) => {
    if (typeof v !== 'string' || !(values as string[]).includes(v)) throw new ShapeError(at, `one of ${values.join(', ')}`, v);
    return v as T;
  };
}
function nullable<T>(check: Check<T>): Check<T | null> {
  return (v, at) => (v === null ? null : check(v, at));
}
/** PowerShell's ConvertTo-Json writes an empty list as null and sometimes a one-item list as the item: both are read as lists. */
function list<T>(check: Check<T>): Check<T[]> {
  return (v, at) => {
    if (v === null) return [];
    const items = Array.isArray(v) ? v : [v];
    return items.map((item, i) => check(item, `${at}[${i}]`));
  };
}
function record<T>(check: Check<T>): Check<Record<string, T>> {
  return (v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ShapeError(at, 'an object', v);
    const out: Record<string, T> = {};
    for (const [key, value] of Object.entries(v)) out[key] = check(value, `${at}.${key}`);
    return out;
  };
}
type Shape<T> = { [K in keyof T]-?: Check<T[K]> };
function object<T>(shape: Shape<T>): Check<T> {
  return (v, at) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ShapeError(at, 'an object', v);
    const source = v as Record<string, unknown>;
    const out = {} as T;
    for (const key of Object.keys(shape) as (keyof T & string)[]) out[key] = shape[key](source[key], `${at}.${key}`);
    return out;
  };
}
const registryValue: Check<string | number | boolean | null> = (v, at) => {
  if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  throw new ShapeError(at, 'a string, number, true/false or null', v);
};

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * A file as the engine sends it ({path, data: base64|null, sha256|null}), decoded into a
 * ConfigFileFact; the SHA-256 is checked against the bytes.
 */
export const fileCheck: Check<ConfigFileFact> = (v, at) => {
  const raw = object<{ path: string }>({ path: str })(v, at);
  const source = v as Record<string, unknown>;
  const base64 = nullable(str)(source['data'], `${at}.data`);
  if (base64 !== null && !/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) throw new ShapeError(`${at}.data`, 'base64', base64);
  const data = base64 === null ? null : new Uint8Array(Buffer.from(base64, 'base64'));
  if (data === null) return { path: raw.path, text: null, data: null, sha256: null, format: null };
  const sha256 = sha256Of(data);
  const sent = str(source['sha256'], `${at}.sha256`);
  if (!HEX64.test(sent)) throw new ShapeError(`${at}.sha256`, '64 lower-case hex digits', sent);
  if (sent !== sha256) throw new ShapeError(`${at}.sha256`, `the SHA-256 of the data (${sha256})`, sent);
  const { text, ...format } = decodeText(data);
  return { path: raw.path, text, data, sha256, format };
};

const fileVersion = object<FileVersionFact>({ fileName: str, version: str });
const service = object<ServiceFact>({ name: str, displayName: str, status: str, startType: str });
const appPool = object<AppPoolFact>({ name: str, state: str, autoStart: bool, startMode: str });
const os = object<OsFact>({ caption: str, version: str, buildNumber: str });
const registryKey = object<RegistryKey>({ name: str, values: record(registryValue) });

const serverFacts = object<ServerFacts>({
  target: object<ServerFacts['target']>({ kind: oneOf('local', 'image'), path: nullable(str), computerName: nullable(str) }),
  registry: nullable(list(registryKey)),
  exsetup: nullable(fileVersion),
  services: nullable(list(service)),
  cachtokn: nullable(fileVersion),
  os: nullable(os),
  environment: nullable(record(str)),
  appPools: nullable(list(appPool)),
  applicationHost: nullable(fileCheck),
  missing: list(str),
});

const base64: Check<string> = (v, at) => {
  const s = str(v, at);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s)) throw new ShapeError(at, 'base64', s);
  return s;
};
const stateFile: Check<StateFile> = (v, at) => {
  const raw = object<{ data: string; sha256: string }>({ data: base64, sha256: str })(v, at);
  const data = new Uint8Array(Buffer.from(raw.data, 'base64'));
  if (sha256Of(data) !== raw.sha256) throw new ShapeError(`${at}.sha256`, `the SHA-256 of the data`, raw.sha256);
  return { data, sha256: raw.sha256 };
};
const anything: Check<unknown> = (v) => v;

/** One operation: how long it may take by default, and the check of its result. */
export interface Operation<O extends OpName> {
  /** Milliseconds without an answer or event before the engine is stopped. */
  timeoutMs: number;
  result: Check<Results[O]>;
}

/**
 * Every operation. Timeouts count from the request (or its last progress event); the first request
 * of a run also waits for PowerShell to start, which takes seconds on a busy server.
 */
export const OPERATIONS: { [O in OpName]: Operation<O> } = {
  preflight: {
    timeoutMs: 60_000,
    result: object<Preflight>({ psVersion: str, edition: str, platform: str, is64BitProcess: bool, elevated: nullable(bool), languageMode: str, executionPolicy: str }),
  },
  gather: { timeoutMs: 120_000, result: serverFacts },
  readFiles: { timeoutMs: 60_000, result: object<Results['readFiles']>({ files: list(fileCheck) }) },
  collect: { timeoutMs: 1_800_000, result: object<Results['collect']>({ written: list(str), skipped: (v, at) => (v === undefined ? [] : list(object<{ path: string; reason: string }>({ path: str, reason: str }))(v, at)) }) },
  whoami: { timeoutMs: 60_000, result: object<WindowsIdentity>({ sid: str, elevated: bool }) },
  security: {
    timeoutMs: 60_000,
    result: object<Results['security']>({ entries: list(object<PathSecurity>({ path: str, kind: oneOf('missing', 'file', 'folder', 'link', 'other'), sddl: nullable(str) })) }),
  },
  createSecure: { timeoutMs: 60_000, result: object<Results['createSecure']>({ created: str }) },
  winHttpSettings: { timeoutMs: 60_000, result: object<Results['winHttpSettings']>({ value: nullable(str) }) },
  lock: { timeoutMs: 60_000, result: object<Results['lock']>({ lock: str, staleCleared: anything }) },
  unlock: { timeoutMs: 60_000, result: (v) => (typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {}) },
  readState: {
    timeoutMs: 120_000,
    result: object<Results['readState']>({
      ledger: nullable(stateFile),
      journals: list((v, at) => ({ ...stateFile(v, at), name: str((v as Record<string, unknown>)['name'], `${at}.name`) })),
      files: list(str),
      ignored: (v, at) => (v === undefined ? [] : list(str)(v, at)),
    }),
  },
  readBlob: { timeoutMs: 60_000, result: object<Results['readBlob']>({ data: nullable(base64) }) },
  // Long steps (stopping a service) send progress events, each of which resets this.
  execute: { timeoutMs: 180_000, result: object<Results['execute']>({ steps: list(object<{ index: number; prior: unknown; after: unknown }>({ index: (v, at) => (typeof v === 'number' ? v : (() => { throw new ShapeError(at, 'a number', v); })()), prior: anything, after: anything })), journal: str }) },
  exit: { timeoutMs: 5_000, result: object<Results['exit']>({}) },
};

/** Checks an event's payload. */
export const eventCheck: Check<EngineEvent> = object<EngineEvent>({ kind: str, message: str });
