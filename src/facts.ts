/** What the PowerShell engine gathers from a server or a server image, as plain data. */
import type { TextFormat } from './text/encoding.ts';

/** One registry key under HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15 with its values. */
export interface RegistryKey {
  /** Key name as PSChildName gives it ("Setup", "MailboxRole", "AdminTools"). */
  name: string;
  values: Record<string, string | number | boolean | null>;
}

/** A Windows service's top-level state. */
export interface ServiceFact {
  name: string;
  displayName: string;
  /** "Running", "Stopped", ... */
  status: string;
  /** "Automatic", "Manual", "Disabled", ... */
  startType: string;
}

/** An IIS application pool's state. */
export interface AppPoolFact {
  name: string;
  /** "Started", "Stopped", ... */
  state: string;
  autoStart: boolean;
  startMode: string;
}

/** A file version, from the typed FileMajorPart.. parts (never the ToString text). */
export interface FileVersionFact {
  fileName: string;
  /** Four numbers without padding. */
  version: string;
}

/** The operating system. */
export interface OsFact {
  caption: string;
  /** "10.0.17763" */
  version: string;
  buildNumber: string;
}

/** The answer of the engine's `gather` request. */
export interface ServerFacts {
  target: { kind: 'local' | 'image'; path: string | null; computerName: string | null };
  /** Keys under ...\ExchangeServer\v15; null when there is no Exchange. */
  registry: RegistryKey[] | null;
  exsetup: FileVersionFact | null;
  services: ServiceFact[] | null;
  cachtokn: FileVersionFact | null;
  os: OsFact | null;
  environment: Record<string, string> | null;
  appPools: AppPoolFact[] | null;
  /** applicationHost.config; null when absent (no IIS). */
  applicationHost: ConfigFileFact | null;
  /** Which optional exports (image) or sources (live) could not be read, by file name. */
  missing: string[];
}

/** A configuration file as read: its bytes, their SHA-256 and format, and the decoded text, with its Windows path. */
export interface ConfigFileFact {
  /** Windows path ("C:\\Windows\\System32\\inetsrv\\config\\applicationHost.config"). */
  path: string;
  /** Text, BOM removed, newlines as in the file; null when the file does not exist. */
  text: string | null;
  /** The file's bytes exactly; null when the file does not exist. */
  data: Uint8Array | null;
  /** Lower-case hex SHA-256 of data; null when the file does not exist. */
  sha256: string | null;
  /** How the file is encoded (encodeText writes it back the same way); null when the file does not exist. */
  format: TextFormat | null;
}
