/** The one UI module: colours decided once, semantic names, a spinner that stays quiet when it must. */
import { Chalk, type ChalkInstance } from 'chalk';
import type { RunOutput } from './context.ts';

/** How the run talks to people. */
export interface UiOptions {
  json: boolean;
  color: boolean;
  verbose: boolean;
}

/** Semantic colours for one output stream. */
export interface Palette {
  readonly ok: (text: string) => string;
  readonly warn: (text: string) => string;
  readonly bad: (text: string) => string;
  readonly dim: (text: string) => string;
  readonly strong: (text: string) => string;
}

/** Semantic colours and the stderr conversation. The top-level colours are for stdout (the result); `err` is for stderr. */
export interface Ui extends Palette {
  readonly options: UiOptions;
  /** Colours for text written to stderr (warnings, conversation): decided by stderr, not stdout. */
  readonly err: Palette;
  /** The width to wrap stdout's text to: its terminal's columns, 80 when unknown or 0. */
  readonly width: number;
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

/** Whether a stream gets colour: colour wanted for the run (which already weighs --no-color, NO_COLOR and stderr) and this stream a terminal, or FORCE_COLOR. */
export function streamColor(wanted: boolean, isTty: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (!wanted) return false;
  if (env['FORCE_COLOR'] !== undefined && env['FORCE_COLOR'] !== '0') return true;
  return isTty;
}

/** A terminal's width for wrapping: its columns, or 80 when unknown or 0 (serial consoles, `script`, some remote shells report 0). */
export function terminalWidth(columns: number | undefined): number {
  return columns !== undefined && Number.isInteger(columns) && columns > 0 ? columns : 80;
}

/**
 * Wraps plain text (no escape codes) to `width` columns: the first line starts with `first`, the
 * others with `rest` (a hanging indent). Words are never broken: a word longer than a line stands alone.
 */
export function wrapText(text: string, width: number, first: string, rest: string = first): string[] {
  const words = text.split(/\s+/).filter((w) => w !== '');
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (const word of words) {
    const prefix = lines.length === 0 ? first : rest;
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest + word;
      continue;
    }
    line = empty ? prefix + word : `${line} ${word}`;
    empty = false;
  }
  if (!empty || lines.length === 0) lines.push(line);
  return lines;
}

function palette(chalk: ChalkInstance): Palette {
  return {
    ok: (t) => chalk.green(t),
    warn: (t) => chalk.yellow(t),
    bad: (t) => chalk.red(t),
    dim: (t) => chalk.dim(t),
    strong: (t) => chalk.bold(t),
  };
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
  // stdout's colour and width follow stdout itself (a report redirected to a file gets no escape codes).
  const outChalk: ChalkInstance = new Chalk({ level: streamColor(options.color, process.stdout.isTTY === true) ? 1 : 0 });
  const chalk: ChalkInstance = new Chalk({ level: options.color ? 1 : 0 });
  // A terminal that reports 0 columns (serial consoles, `script`) makes a spinner redraw without end: no spinner there.
  const interactive = !options.json && output.stderrIsTty && (process.stderr.columns ?? 0) > 0;
  return {
    options,
    ...palette(outChalk),
    err: palette(chalk),
    width: terminalWidth(process.stdout.isTTY === true ? process.stdout.columns : process.stderr.isTTY === true ? process.stderr.columns : undefined),
    say: (text) => {
      output.stderr(text + '\n');
    },
    debug: (text) => {
      if (options.verbose) output.stderr(chalk.dim(text) + '\n');
    },
    spin: async <T>(text: string, work: (status: (text: string) => void) => Promise<T>): Promise<T> => {
      if (!interactive) return work(() => {});
      // ora is loaded only when a spinner is shown. Enabled on a terminal whatever the colour: a disabled ora prints its text as a line that stays behind.
      const { default: ora } = await import('ora');
      const spinner = ora({ text, stream: process.stderr, color: options.color ? 'cyan' : false, isEnabled: true }).start();
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
