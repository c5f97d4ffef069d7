/** Sites, applications, virtual directories and global modules of applicationHost.config, and which web.config files apply to a URL. */
import { inputError } from '../errors.ts';
import { descend, parseConfigXml, type ConfigDocument, type XmlElement } from './config-xml.ts';

/** A virtual directory: its path inside the application and its physicalPath as written (environment variables not expanded). */
export interface VirtualDirectory {
  path: string;
  physicalPath: string;
}

/** An IIS application of a site ("/", "/owa", "/Autodiscover"). */
export interface Application {
  path: string;
  applicationPool: string | null;
  virtualDirectories: VirtualDirectory[];
}

/** An IIS site. */
export interface Site {
  name: string;
  id: string;
  applications: Application[];
}

/** A native module registered in system.webServer/globalModules. */
export interface GlobalModule {
  name: string;
  image: string;
  line: number;
}

/** One level of the configuration hierarchy for a URL: a URL path prefix and, when it is a folder, the web.config that may sit there. */
export interface ConfigLevel {
  /** URL path of this level inside the site, without trailing slash ("/" for the site root, "/owa", "/owa/auth"). */
  urlPath: string;
  /** Windows path of the web.config at this level, or null when the level is the URL's final (file) segment. */
  webConfigPath: string | null;
  /** True when this level is the root of an application. */
  applicationRoot: boolean;
}

/** Where applicationHost.config lives on a server (environment variables already expanded for C:\Windows). */
export const APPLICATION_HOST_PATH = 'C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config';

/** The sites declared in system.applicationHost/sites, in document order. */
export function readSites(apphost: ConfigDocument): Site[] {
  return descend(apphost.root, 'system.applicationHost', 'sites', 'site').map((site) => ({
    name: site.attributes.name ?? '',
    id: site.attributes.id ?? '',
    applications: site.children
      .filter((c) => c.name === 'application')
      .map((app) => ({
        path: normalizeUrlPath(app.attributes.path ?? '/'),
        applicationPool: app.attributes.applicationPool ?? null,
        virtualDirectories: app.children
          .filter((c) => c.name === 'virtualDirectory')
          .map((vd) => ({ path: normalizeUrlPath(vd.attributes.path ?? '/'), physicalPath: vd.attributes.physicalPath ?? '' })),
      })),
  }));
}

/** The site named `name` (case-insensitive); throws inputError naming applicationHost.config when there is none. */
export function findSite(apphost: ConfigDocument, name: string): Site {
  const site = readSites(apphost).find((s) => s.name.toLowerCase() === name.toLowerCase());
  if (site === undefined) throw inputError(`${apphost.file}: no site named "${name}" in system.applicationHost/sites`);
  return site;
}

/**
 * The native modules of system.webServer/globalModules at the root of applicationHost.config, after its add/remove/clear entries;
 * `source` reads a section kept in another file (configSource; null: it cannot be read).
 */
export function readGlobalModules(apphost: ConfigDocument, source: (section: XmlElement) => XmlElement | null = (s) => s): GlobalModule[] {
  const modules: GlobalModule[] = [];
  for (const element of descend(apphost.root, 'system.webServer', 'globalModules')) {
    const section = source(element);
    if (section === null) continue;
    for (const entry of section.children) {
      const name = entry.attributes.name ?? '';
      if (entry.name === 'clear') modules.length = 0;
      else if (entry.name === 'remove') removeByName(modules, name);
      else if (entry.name === 'add') {
        removeByName(modules, name);
        modules.push({ name, image: entry.attributes.image ?? '', line: entry.line });
      }
    }
  }
  return modules;
}

/** Expands %VAR% references the way IIS does for physicalPath; keys are case-insensitive, SystemDrive defaults to "C:" and windir/SystemRoot to "C:\Windows"; unknown variables stay as written. */
export function expandEnv(path: string, env: Record<string, string> = {}): string {
  const lower = new Map<string, string>();
  lower.set('systemdrive', 'C:');
  lower.set('windir', 'C:\\Windows');
  lower.set('systemroot', 'C:\\Windows');
  for (const [k, v] of Object.entries(env)) lower.set(k.toLowerCase(), v);
  return path.replace(/%([^%]+)%/g, (whole, name: string) => lower.get(name.toLowerCase()) ?? whole);
}

/** The configuration levels of `urlPath` (query string ignored) in `site`, from the site root down, with the web.config path of each folder level. */
export function configLevelsFor(site: Site, urlPath: string, env: Record<string, string> = {}): ConfigLevel[] {
  const path = urlPathOnly(urlPath);
  const segments = path.split('/').filter((s) => s !== '');
  const endsWithSlash = path.endsWith('/');
  const vdirs = site.applications.flatMap((app) =>
    app.virtualDirectories.map((vd) => ({ url: joinUrl(app.path, vd.path), physicalPath: vd.physicalPath })),
  );
  const appPaths = new Set(site.applications.map((a) => a.path.toLowerCase()));
  const isVdirOrApp = (p: string): boolean => appPaths.has(p.toLowerCase()) || vdirs.some((v) => v.url.toLowerCase() === p.toLowerCase());

  const levels: ConfigLevel[] = [];
  for (let i = 0; i <= segments.length; i++) {
    const levelPath = '/' + segments.slice(0, i).join('/');
    const isLast = i === segments.length && i > 0;
    const isFolder = !isLast || endsWithSlash || isVdirOrApp(levelPath);
    levels.push({
      urlPath: levelPath,
      webConfigPath: isFolder ? webConfigPathFor(vdirs, levelPath, env) : null,
      applicationRoot: appPaths.has(levelPath.toLowerCase()),
    });
  }
  return levels;
}

/** The Windows paths of every web.config that applies to `urlPath` in the site named `siteName`, from the site root down, so the caller can read exactly those files (apphost as text or parsed). */
export function configPathsFor(apphost: ConfigDocument | string, siteName: string, urlPath: string, env: Record<string, string> = {}): string[] {
  const doc = typeof apphost === 'string' ? parseConfigXml(apphost, APPLICATION_HOST_PATH) : apphost;
  return configLevelsFor(findSite(doc, siteName), urlPath, env).flatMap((l) => (l.webConfigPath === null ? [] : [l.webConfigPath]));
}

/** The key under which a web.config's text is looked up: its Windows path in lower case (Windows paths are case-insensitive). */
export function configKey(windowsPath: string): string {
  return windowsPath.toLowerCase();
}

/** The path part of a URL as sent (before "?"), always starting with "/". */
export function urlPathOnly(url: string): string {
  const q = url.indexOf('?');
  const path = q >= 0 ? url.slice(0, q) : url;
  return path.startsWith('/') ? path : '/' + path;
}

/** A URL path with single slashes and no trailing slash ("/" for the root), so paths compare as strings. */
export function normalizeUrlPath(path: string): string {
  return '/' + path.split('/').filter((s) => s !== '').join('/');
}

function joinUrl(a: string, b: string): string {
  return normalizeUrlPath(`${a}/${b}`);
}

function webConfigPathFor(vdirs: { url: string; physicalPath: string }[], levelPath: string, env: Record<string, string>): string | null {
  const lower = levelPath.toLowerCase();
  let best: { url: string; physicalPath: string } | null = null;
  for (const v of vdirs) {
    const u = v.url.toLowerCase();
    const within = u === '/' || lower === u || lower.startsWith(u + '/');
    if (within && (best === null || v.url.length > best.url.length)) best = v;
  }
  if (best === null) return null;
  const rest = levelPath.slice(best.url === '/' ? 1 : best.url.length + 1).split('/').filter((s) => s !== '');
  const base = expandEnv(best.physicalPath, env).replace(/\//g, '\\').replace(/\\+$/, '');
  return [base, ...rest, 'web.config'].join('\\');
}

function removeByName(modules: GlobalModule[], name: string): void {
  const i = modules.findIndex((m) => m.name.toLowerCase() === name.toLowerCase());
  if (i >= 0) modules.splice(i, 1);
}
