/** config.json in the state folder: trusted keys (retired ones kept, marked), the feed URL, the proxy, the block list. */
import { inputError } from '../errors.ts';
import { parseTrustedKey, type TrustedKey } from '../trust/keys.ts';
import { configPath } from './paths.ts';
import { redactCredentials } from '../trust/redact.ts';
import { readStateFile, type Runner, currentRunner } from './secure.ts';
import { guardStateRead, type WindowsHost } from './windows-acl.ts';

/** The state folder's configuration after validation. */
export interface StateConfig {
  /** Keys whose signatures are accepted; a `retired: true` entry refuses that key's signatures. */
  trustedKeys: TrustedKey[];
  /** The feed `exmit catalog update` fetches when --url is not given; null: none configured. */
  catalogUrl: string | null;
  /** Proxy for the feed ("http://proxy.contoso.com:8080"); null: HTTPS_PROXY/NO_PROXY decide. */
  proxy: string | null;
  /** Mitigation ids the admin blocked: reported as `blocked`, never applied. */
  blocked: string[];
}

const MAX_CONFIG_BYTES = 1024 * 1024;
const FIELDS = new Set(['trustedKeys', 'catalogUrl', 'proxy', 'blocked']);

/** The configuration when there is no config.json. */
export function emptyConfig(): StateConfig {
  return { trustedKeys: [], catalogUrl: null, proxy: null, blocked: [] };
}

/** Reads and validates config.json, checking the folder's and the file's owner and access first; defaults when absent. */
export function readConfig(stateDir: string, runner: Runner = currentRunner()): StateConfig {
  const file = configPath(stateDir);
  const bytes = readStateFile(stateDir, file, MAX_CONFIG_BYTES, runner);
  if (bytes === null) return emptyConfig();
  return parseConfig(bytes.toString('utf8').replace(/^\uFEFF/, ''), file);
}

/** Validates config.json's text; `file` names it in errors. */
export function parseConfig(text: string, file: string): StateConfig {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw inputError(`${file}: not valid JSON (${(error as Error).message})`, 'Fix the file, or remove it to start from defaults.');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw inputError(`${file}: must be a JSON object`, 'See docs/feeds.md, "config.json".');
  const record = value as Record<string, unknown>;
  for (const field of Object.keys(record)) {
    if (!FIELDS.has(field)) throw inputError(`${file}: unknown field "${field}"`, `Known fields: ${[...FIELDS].join(', ')}.`);
  }
  const config = emptyConfig();
  const keys = record['trustedKeys'];
  if (keys !== undefined) {
    if (!Array.isArray(keys)) throw inputError(`${file}: trustedKeys must be an array`, 'See docs/feeds.md, "config.json".');
    config.trustedKeys = keys.map((key, i) => parseTrustedKey(key, `${file} trustedKeys[${i}]`, false));
    const seen = new Set<string>();
    for (const key of config.trustedKeys) {
      if (seen.has(key.keyId)) throw inputError(`${key.origin}: key ${key.keyId} is listed twice`, 'Keep one entry per key (with "retired": true to retire it).');
      seen.add(key.keyId);
    }
  }
  config.catalogUrl = optionalString(record, 'catalogUrl', file);
  if (config.catalogUrl !== null && !URL.canParse(config.catalogUrl)) throw inputError(`${file}: catalogUrl "${redactCredentials(config.catalogUrl)}" is not a URL`, 'Use https://host/path/catalog.xml.');
  config.proxy = optionalString(record, 'proxy', file);
  if (config.proxy !== null && !URL.canParse(config.proxy)) throw inputError(`${file}: proxy "${redactCredentials(config.proxy)}" is not a URL`, 'Use http://proxy.example:8080.');
  const blocked = record['blocked'];
  if (blocked !== undefined) {
    if (!Array.isArray(blocked) || blocked.some((id) => typeof id !== 'string' || id === '')) throw inputError(`${file}: blocked must be an array of mitigation ids`, 'As in "blocked": ["owa-csp-xss"].');
    config.blocked = blocked as string[];
  }
  return config;
}

function optionalString(record: Record<string, unknown>, field: string, file: string): string | null {
  const value = record[field];
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string' || value === '') throw inputError(`${file}: ${field} must be a non-empty string`);
  return value;
}

/**
 * Reads config.json in the one safe order: the state folder's access is checked first (on Windows
 * through the engine's WindowsHost), then the file is read.
 */
export async function readCheckedConfig(stateDir: string, windows: WindowsHost | null): Promise<StateConfig> {
  await guardStateRead(stateDir, windows);
  return readConfig(stateDir);
}

/** The admin's block list, lower-cased: mitigations exmit reports as blocked and never applies. */
export function blockedIds(config: StateConfig): Set<string> {
  return new Set(config.blocked.map((id) => id.toLowerCase()));
}
