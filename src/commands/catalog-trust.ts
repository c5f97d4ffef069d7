/** `exmit catalog verify | update | keygen | sign`: signed catalogs (feed publishers and servers). */
import type { Command } from 'commander';
import type { RunContext } from '../cli.ts';

/** The trust subcommands of `catalog`. */
export function trustCommands(_context: RunContext): Command[] {
  return [];
}
