/** Where the state folder is: %ProgramData%\exmit on Windows, the XDG state folder elsewhere, or --state-dir. */
import os from 'node:os';
import path from 'node:path';

/** The default state folder for a platform and environment. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home: string = os.homedir()): string {
  if (platform === 'win32') {
    const programData = env['ProgramData'] ?? env['PROGRAMDATA'] ?? 'C:\\ProgramData';
    return path.win32.join(programData, 'exmit');
  }
  const xdg = env['XDG_STATE_HOME'];
  // The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
  if (xdg !== undefined && xdg !== '' && path.posix.isAbsolute(xdg)) return path.posix.join(xdg, 'exmit');
  return path.posix.join(home, '.local', 'state', 'exmit');
}

/** The state folder of this run: --state-dir (made absolute) or the default. */
export function resolveStateDir(flag: string | undefined, cwd: string = process.cwd()): string {
  return flag === undefined || flag === '' ? defaultStateDir() : path.resolve(cwd, flag);
}

/** config.json in the state folder. */
export function configPath(stateDir: string): string {
  return path.join(stateDir, 'config.json');
}

/** The cached catalog (catalog bytes, signature and feed metadata in one file, so it is replaced atomically). */
export function cachePath(stateDir: string): string {
  return path.join(stateDir, 'catalog-cache.json');
}
