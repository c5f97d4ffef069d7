/** Reads a server (live or image) through the engine: preflight, facts, detection. */
import type { EngineSession, EngineTarget } from './powershell/door.ts';
import type { ServerFacts } from './facts.ts';
import { ExitCode, ExmitError, inputError } from './errors.ts';
import { detectServer, type DetectResult } from './exchange/detect.ts';

/** The engine's preflight answer. */
export interface Preflight {
  psVersion: string;
  edition: string;
  platform: string;
  is64BitProcess: boolean;
  elevated: boolean | null;
  languageMode: string;
  executionPolicy: string;
}

/** A server as read: the raw facts and what they mean. */
export interface ServerReading {
  facts: ServerFacts;
  server: DetectResult;
}

/** Stops a live run that cannot read the configuration reliably: not Windows, not elevated, not 64-bit, constrained. */
export function checkPreflight(preflight: Preflight, target: EngineTarget): void {
  if (preflight.languageMode !== 'FullLanguage') {
    throw inputError(`PowerShell runs in ${preflight.languageMode} mode here, so exmit's engine cannot run`, 'Application control (WDAC/AppLocker) sets this; exmit does not work around it.');
  }
  if (target.kind !== 'local') return;
  if (preflight.platform !== 'Windows') {
    throw inputError('--target local reads the Exchange server this runs on, and this machine is not Windows', 'Run exmit on the Exchange server, or audit a server image with --target image:DIR.');
  }
  if (preflight.elevated !== true || !preflight.is64BitProcess) {
    throw new ExmitError(ExitCode.error, 'run from an elevated prompt: exmit needs administrator rights and 64-bit PowerShell to read the Exchange and IIS configuration', 'Open PowerShell with "Run as administrator" (64-bit) and run exmit again.');
  }
}

/** Preflight, gather and detect, in the run's one engine. */
export async function readServer(engine: EngineSession, target: EngineTarget): Promise<ServerReading> {
  const preflight = await engine.request<Preflight>('preflight', { target });
  checkPreflight(preflight, target);
  const facts = await engine.request<ServerFacts>('gather', { target });
  return { facts, server: detectServer(facts) };
}
