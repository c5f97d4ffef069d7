/** `exmit detect`: what Exchange is here: product, build, CU/SU name, roles. */
import { Command } from 'commander';
import type { RunContext } from '../cli.ts';
import { addCommonOptions, engineOptions, readCommonOptions } from '../options.ts';
import { createUi, wrapText, type Ui } from '../ui.ts';
import { withEngine } from '../powershell/door.ts';
import { readServer } from '../server.ts';
import type { DetectResult } from '../exchange/detect.ts';
import { printJson, printText } from '../output.ts';

/** The `detect` command. */
export function detectCommand(context: RunContext): Command {
  return addCommonOptions(new Command('detect').description('what Exchange is here: product, build, CU/SU name, roles')).action(async (raw) => {
    const options = readCommonOptions(raw);
    const ui = createUi(options);
    const reading = await ui.spin('Reading the server', () =>
      withEngine(engineOptions(options, ui), (engine) => readServer(engine, options.target)),
    );
    if (options.json) printJson(reading.server);
    else printText(renderDetect(reading.server, ui));
    context.exitCode = 0;
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
