/** The one UI module: colours decided once, semantic names, a spinner that stays quiet when it must. */
import { Chalk, type ChalkInstance } from 'chalk';
import type { RunOutput } from './context.ts';

/** How the run talks to people. */
export interface UiOptions {
  json: boolean;
  color: boolean;
  verbose: boolean;
}

/** Semantic colours and the stderr conversation. */
export interface Ui {
  readonly options: UiOptions;
  readonly ok: (text: string) => string;
  readonly warn: (text: string) => string;
  readonly bad: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly strong: (text: string) => string;
  /** A line of conversation on stderr (never stdout). */
  say(text: string): void;
  /** A line on stderr only with --verbose. */
  debug(text: string): void;
  /** A spinner on stderr, only on a terminal and never with --json; `work` may change its text (engine progress). */
  spin<T>(text: string, work: (status: (text: string) => void) => Promise<T>): Promise<T>;
}

/** Colour is on only on a terminal, without --no-color and without NO_COLOR (chalk itself ignores NO_COLOR). */
export function colorWanted(flag: boolean, env: NodeJS.ProcessEnv = process.env, isTty: boolean = process.stderr.isTTY === true): boolean {
  if (!flag) return false;
  if (env['NO_COLOR'] !== undefined && env['NO_COLOR'] !== '') return false;
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  return isTty;
}

const processStderr: Pick<RunOutput, 'stderr' | 'stderrIsTty'> = {
  stderr: (text) => {
    process.stderr.write(text);
  },
  get stderrIsTty() {
    return process.stderr.isTTY === true;
  },
};

/** Makes the run's UI from the parsed common options; it writes to `output` (default: the process's stderr). */
export function createUi(options: UiOptions, output: Pick<RunOutput, 'stderr' | 'stderrIsTty'> = processStderr): Ui {
  const chalk: ChalkInstance = new Chalk({ level: options.color ? 1 : 0 });
  const interactive = !options.json && output.stderrIsTty;
  return {
    options,
    ok: (t) => chalk.green(t),
    warn: (t) => chalk.yellow(t),
    bad: (t) => chalk.red(t),
    dim: (t) => chalk.dim(t),
    strong: (t) => chalk.bold(t),
    say: (text) => {
      output.stderr(text + '\n');
    },
    debug: (text) => {
      if (options.verbose) output.stderr(chalk.dim(text) + '\n');
    },
    spin: async <T>(text: string, work: (status: (text: string) => void) => Promise<T>): Promise<T> => {
      if (!interactive) return work(() => {});
      // ora is loaded only when a spinner is shown.
      const { default: ora } = await import('ora');
      const spinner = ora({ text, stream: process.stderr, color: 'cyan', isEnabled: options.color }).start();
      try {
        return await work((status) => {
          spinner.text = `${text}: ${status}`;
        });
      } finally {
        spinner.stop();
      }
    },
  };
}
