/** `exmit detect`: what Exchange is here: product, build, CU/SU name, roles. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type CommonOptions } from '../options.ts';
import { wrapText, type Ui } from '../ui.ts';
import type { DetectResult } from '../exchange/detect.ts';

/** The `detect` command. */
export function detectCommand(context: RunContext): Command {
  return addCommonOptions(new Command('detect').description('what Exchange is here: product, build, CU/SU name, roles'), { target: true, catalog: false, stateDir: false }).action(async (raw) => {
    const options = readCommonOptions(raw);
    const [{ createUi }, { printJson, printText }] = await Promise.all([import('../ui.ts'), import('../output.ts')]);
    const ui = createUi(options, context.output);
    const server = await runDetect(context, options, ui);
    if (options.json) printJson(server, context.output);
    else printText(renderDetect(server, ui), context.output);
    context.exitCode = 0;
  });
}

/** Starts the engine at once (PowerShell's start overlaps loading the rest), then preflight, gather and detect. */
export async function runDetect(context: Pick<RunContext, 'startEngine'>, options: CommonOptions, ui: Ui): Promise<DetectResult> {
  const { withEngine } = await import('../powershell/door.ts');
  return withEngine(() => context.startEngine(engineOptions(options, ui)), async (engine) => {
    const { readServer, servicesWanted } = await import('../server.ts');
    const reading = await ui.spin('Reading the server', () => readServer(engine, options.target, servicesWanted(null)));
    return reading.server;
  });
}

/** The human rendering of a detection. */
export function renderDetect(server: DetectResult, ui: Ui): string {
  const lines = [
    `${ui.strong(server.name)}${server.exactBuild ? '' : ui.warn(' (nearest known release)')}`,
    `  product:     ${server.product}`,
    `  build:       ${server.build}${server.suLevelKnown ? '' : ui.warn(' (from the registry: SU level unknown)')}`,
    `  CU:          ${server.cu ?? 'newer than the build list knows'}${server.update !== null ? `, ${server.update}` : ''}`,
    `  released:    ${server.releaseDate ?? 'unknown'}`,
    `  roles:       ${server.roles.join(', ') || 'none'}`,
    `  install:     ${server.installPath ?? 'unknown'}`,
  ];
  if (server.latestForCu !== null && server.latestForCu.build !== server.build) {
    lines.push(`  newest for this CU: ${server.latestForCu.name} (${server.latestForCu.build})`);
  }
  const eems = server.eems.present === null ? 'unknown (no service list)' : server.eems.present ? `present, ${server.eems.status ?? 'state unknown'}, ${server.eems.startType ?? 'start type unknown'}` : 'not present';
  lines.push(`  EEMS:        ${eems}`);
  const support = wrapText(`${server.support.state}: ${server.support.reason}`, ui.width, '  support:     ', ' '.repeat(15));
  lines.push(...(server.support.state === 'current' ? support : support.map((l) => ui.bad(l))));
  return lines.join('\n');
}
