/** The admin's block list: mitigations exmit must report as blocked and never apply. */
import { readConfig } from '../state/config.ts';
import { resolveStateDir } from '../state/paths.ts';

/** Lower-cased ids of blocked mitigations from the state folder's configuration (`blocked`). */
export function readBlocked(stateDirFlag: string | undefined): Set<string> {
  const config = readConfig(resolveStateDir(stateDirFlag));
  return new Set(config.blocked.map((id) => id.toLowerCase()));
}
