/** Reads a server (live or image) through the engine: preflight, facts, detection. */
import type { Engine } from './context.ts';
import type { EngineTarget, Preflight } from './powershell/protocol.ts';
import type { ConfigFileFact, ServerFacts } from './facts.ts';
import type { Catalog } from './catalog/types.ts';
import { parseConfigXml, type ConfigDocument } from './iis/config-xml.ts';
import { APPLICATION_HOST_PATH, configKey, configPathsFor } from './iis/sites.ts';
import { configSourceRefs } from './iis/config-source.ts';
import { ExitCode, ExmitError, inputError } from './errors.ts';
import { detectServer, EEMS_SERVICE, type DetectResult } from './exchange/detect.ts';

export type { Preflight } from './powershell/protocol.ts';

/** A server as read: the raw facts and what they mean. */
export interface ServerReading {
  facts: ServerFacts;
  server: DetectResult;
}

/** Stops a live run that cannot read the configuration reliably: not Windows, not elevated, not 64-bit, constrained. */
export function checkPreflight(preflight: Preflight, target: EngineTarget): void {
  if (preflight.languageMode !== 'FullLanguage') {
    throw new ExmitError(ExitCode.error, `PowerShell runs in ${preflight.languageMode} mode here, so exmit's engine cannot run`, 'Application control (WDAC/AppLocker) sets this; exmit does not work around it.', 'policy');
  }
  if (target.kind !== 'local') return;
  if (preflight.platform !== 'Windows') {
    throw inputError('--target local reads the Exchange server this runs on, and this machine is not Windows', 'Run exmit on the Exchange server, or audit a server image with --target image:DIR.');
  }
  if (preflight.elevated !== true || !preflight.is64BitProcess) {
    throw new ExmitError(ExitCode.error, 'run from an elevated prompt: exmit needs administrator rights and 64-bit PowerShell to read the Exchange and IIS configuration', 'Open PowerShell with "Run as administrator" (64-bit) and run exmit again.', 'environment');
  }
}

/**
 * The services a run can ask about: EEMS (detect) and, with a catalog, every service its actions
 * name; the engine skips the rest of the service list.
 */
export function servicesWanted(catalog: Catalog | null): string[] {
  const names = new Map<string, string>([[EEMS_SERVICE.toLowerCase(), EEMS_SERVICE]]);
  for (const m of catalog?.mitigations ?? []) {
    for (const action of m.actions) if (action.kind === 'service') names.set(action.name.toLowerCase(), action.name);
  }
  return [...names.values()];
}

/** Preflight, gather (only the services in `services`) and detect, in the run's one engine. */
export async function readServer(engine: Engine, target: EngineTarget, services: readonly string[]): Promise<ServerReading> {
  const preflight = await engine.call('preflight', { target });
  checkPreflight(preflight, target);
  const facts = await engine.call('gather', { target, services });
  return { facts, server: detectServer(facts) };
}

/** The IIS configuration a run judges: applicationHost.config and every web.config on the probed paths. */
export interface IisReading {
  apphost: ConfigDocument;
  /** Each web.config's text by configKey; null when absent. */
  webConfigs: Map<string, string | null>;
  /** Each web.config as read (bytes, SHA-256, format), by configKey: what apply writes back from. */
  webConfigFiles: Map<string, ConfigFileFact>;
  /** Each file a configSource attribute names (in applicationHost.config or a web.config read), its text by configKey; null when absent. */
  configSources?: Map<string, string | null>;
  env: Record<string, string>;
}

/** The server's roles that run IIS with Exchange's web services. */
export function iisRoles(server: DetectResult): string[] {
  return server.roles.filter((r) => r === 'Mailbox' || r === 'ClientAccess');
}

/** Whether the server runs IIS with Exchange's web services. */
export function hasIisRoles(server: DetectResult): boolean {
  return iisRoles(server).length > 0;
}

/** Reads applicationHost.config (already gathered) and, in one request, the web.config files on the given site paths; null for servers without IIS roles. */
export async function readIis(engine: Engine, target: EngineTarget, reading: ServerReading, paths: { site: string; url: string }[]): Promise<IisReading | null> {
  if (!hasIisRoles(reading.server)) return null;
  const apphostFact = reading.facts.applicationHost;
  if (apphostFact === null || apphostFact.text === null) {
    const where = target.kind === 'image' ? `${target.path}/fs/C/Windows/System32/inetsrv/config/applicationHost.config` : apphostFact?.path ?? APPLICATION_HOST_PATH;
    throw inputError(`applicationHost.config is missing (${where}), and this server has the ${iisRoles(reading.server).join(' and ')} role${iisRoles(reading.server).length > 1 ? 's' : ''}`, 'An image of a Mailbox or Client Access server must include the IIS configuration; collect it again with "exmit collect".');
  }
  const env = reading.facts.environment ?? {};
  const apphost = parseConfigXml(apphostFact.text, apphostFact.path);
  const wanted = new Set<string>();
  const files: string[] = [];
  for (const p of paths) {
    for (const file of configPathsFor(apphost, p.site, p.url, env)) {
      const key = configKey(file);
      if (!wanted.has(key)) {
        wanted.add(key);
        files.push(file);
      }
    }
  }
  const webConfigs = new Map<string, string | null>();
  const webConfigFiles = new Map<string, ConfigFileFact>();
  if (files.length > 0) {
    const answer = await engine.call('readFiles', { target, paths: files });
    for (const f of answer.files) {
      webConfigs.set(configKey(f.path), f.text);
      webConfigFiles.set(configKey(f.path), f);
    }
  }
  const configSources = await readConfigSources(engine, target, [apphost, ...[...webConfigFiles.values()].flatMap((f) => (f.text === null ? [] : [parsedOrNull(f.text, f.path)]))]);
  return { apphost, webConfigs, webConfigFiles, configSources, env };
}

/** Reads, in one request, every file the configSource attributes of `docs` name (paths IIS would refuse are not read: the merge reports them). */
async function readConfigSources(engine: Engine, target: EngineTarget, docs: (ConfigDocument | null)[]): Promise<Map<string, string | null>> {
  const paths = new Map<string, string>();
  for (const doc of docs) {
    if (doc === null) continue;
    for (const ref of configSourceRefs(doc)) if ('path' in ref.resolved) paths.set(configKey(ref.resolved.path), ref.resolved.path);
  }
  const sources = new Map<string, string | null>();
  if (paths.size === 0) return sources;
  const answer = await engine.call('readFiles', { target, paths: [...paths.values()] });
  for (const f of answer.files) sources.set(configKey(f.path), f.text);
  return sources;
}

// A web.config that is not well-formed is reported by the merge, which names its line.
function parsedOrNull(text: string, file: string): ConfigDocument | null {
  try {
    return parseConfigXml(text, file);
  } catch {
    return null;
  }
}
