/** `exmit catalog update`: download, verify and cache a signed catalog from a feed. */
import { Command } from 'commander';
import type { RunContext } from '../context.ts';
import { addCommonOptions, engineOptions, readCommonOptions, type CommonOptions, type RawCommon } from '../options.ts';
import type { Ui } from '../ui.ts';
import type { UpdateResult } from '../trust/update.ts';
import { inputError, usageError } from '../errors.ts';
import { readTextFile } from '../trust/files.ts';
import { redactCredentials } from '../trust/redact.ts';
import { collectRepeated } from './read-bounded.ts';

/**
 * The download timeout when --timeout is not given: DEFAULT_TIMEOUT_SECONDS of src/trust/update.ts,
 * repeated here so that registering the command does not load the HTTP client (a test checks they agree).
 */
export const DEFAULT_UPDATE_TIMEOUT_SECONDS = 30;

/** `update`'s raw options as commander hands them over. */
export interface RawUpdateOptions extends RawCommon {
  url?: string;
  trust?: string[];
  proxy?: string;
  ca?: string;
  allowHttp?: boolean;
  allowExpired?: boolean;
  timeout?: string;
}

/** `update` options after validation. */
export interface UpdateOptions {
  common: CommonOptions;
  url: string | null;
  trust: string[];
  proxy: string | null;
  ca: string | null;
  allowHttp: boolean;
  allowExpired: boolean;
  timeoutSeconds: number;
}

/** Validates `update`'s options (the --ca file is read here). */
export function readUpdateOptions(raw: RawUpdateOptions): UpdateOptions {
  const common = readCommonOptions(raw);
  let timeoutSeconds = DEFAULT_UPDATE_TIMEOUT_SECONDS;
  if (raw.timeout !== undefined) {
    timeoutSeconds = Number(raw.timeout);
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0 || timeoutSeconds > 600) throw usageError(`--timeout "${raw.timeout}" is not a number of seconds between 0 and 600`, 'As in --timeout 30.');
  }
  const proxy = raw.proxy ?? null;
  if (proxy !== null && !URL.canParse(proxy)) throw usageError(`--proxy "${redactCredentials(proxy)}" is not a URL`, 'As in --proxy http://proxy.contoso.com:8080.');
  let ca: string | null = null;
  if (raw.ca !== undefined) {
    ca = readTextFile(raw.ca, '--ca');
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw inputError(`--ca ${raw.ca} holds no PEM certificate`, 'Give a PEM file with one or more "-----BEGIN CERTIFICATE-----" blocks.');
  }
  return {
    common,
    url: raw.url ?? null,
    trust: raw.trust ?? [],
    proxy,
    ca,
    allowHttp: raw.allowHttp === true,
    allowExpired: raw.allowExpired === true,
    timeoutSeconds,
  };
}

/** The `catalog update` command. */
export function catalogUpdateCommand(context: RunContext): Command {
  const command = new Command('update')
    .description('download, verify and cache a signed catalog (URL and URL.sig) from a feed')
    .option('--url <url>', 'the feed\'s catalog URL (default: catalogUrl in config.json)')
    .option('--trust <pubfile>', 'also trust this public key file (repeatable)', collectRepeated, [])
    .option('--proxy <url>', 'proxy (default: proxy in config.json, else HTTPS_PROXY, else on Windows the WinHTTP proxy; NO_PROXY applies)')
    .option('--ca <file>', 'also trust the CA certificates in this PEM file for HTTPS')
    .option('--allow-http', 'allow http: and file: URLs (the signature is still required)')
    .option('--allow-expired', 'accept an expired catalog')
    .option('--timeout <seconds>', `give up after this many seconds per download (default ${DEFAULT_UPDATE_TIMEOUT_SECONDS})`);
  addCommonOptions(command, { target: false, catalog: false, stateDir: true }).action(async (raw: RawUpdateOptions) => {
    const options = readUpdateOptions(raw);
    const [{ createUi }, { printJson, printText }, { resolveStateDir }, { readTrustFiles }, { withLazyEngine }, { windowsHostFor }, { updateFromFeed }] = await Promise.all([
      import('../ui.ts'),
      import('../output.ts'),
      import('../state/paths.ts'),
      import('../trust/files.ts'),
      import('../powershell/door.ts'),
      import('../powershell/windows-host.ts'),
      import('../trust/update.ts'),
    ]);
    const ui = createUi(options.common, context.output);
    const result = await withLazyEngine(() => context.startEngine(engineOptions(options.common, ui)), (engine) => ui.spin('downloading the catalog', () =>
      updateFromFeed({
        stateDir: resolveStateDir(options.common.stateDir),
        url: options.url,
        extraKeys: readTrustFiles(options.trust),
        proxy: options.proxy,
        ca: options.ca,
        allowInsecure: options.allowHttp,
        allowExpired: options.allowExpired,
        timeoutMs: Math.round(options.timeoutSeconds * 1000),
        now: new Date(),
        windows: windowsHostFor(engine),
      }),
    ));
    for (const warning of result.warnings) ui.say(ui.err.warn(`warning: ${warning}`));
    if (options.common.json) printJson(result, context.output);
    else printText(renderUpdate(result, ui), context.output);
    context.exitCode = 0;
  });
  return command;
}

function renderUpdate(result: UpdateResult, ui: Ui): string {
  switch (result.outcome) {
    case 'updated':
      return `${ui.ok('updated')}: catalog ${result.serial} from ${result.url}, signed by key ${result.keyId}${result.previousSerial === null ? '' : ` (was ${result.previousSerial})`}\n  cached in ${result.cache}`;
    case 'not-modified':
      return `${ui.ok('up to date')}: ${result.url} has not changed (catalog ${result.serial})`;
    case 'unchanged':
      return `${ui.ok('up to date')}: ${result.url} still serves catalog ${result.serial}`;
  }
}
