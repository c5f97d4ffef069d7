/** The admin's block list: mitigations exmit must report as blocked and never apply. */
import { readConfig } from '../state/config.ts';

/** Lower-cased ids of blocked mitigations from the state folder's configuration (`blocked`). */
export async function readBlocked(stateDir: string | undefined): Promise<Set<string>> {
  const config = await readConfig(stateDir);
  return new Set((config?.blocked ?? []).map((id) => id.toLowerCase()));
}
