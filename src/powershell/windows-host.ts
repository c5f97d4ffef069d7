/** The WindowsHost of src/state/windows-acl.ts, served by the engine's whoami, security, createSecure and winHttpSettings operations. */
import type { WindowsHost, WindowsIdentity } from '../state/windows-acl.ts';
import type { EngineSource } from './door.ts';

/** A WindowsHost that asks the run's engine (started on first use); null off Windows, where no one should ask. */
export function windowsHostFor(engine: EngineSource, platform: NodeJS.Platform = process.platform): WindowsHost | null {
  return platform === 'win32' ? engineWindowsHost(engine) : null;
}

/** A WindowsHost over an engine, whatever the platform (tests use it to reach the operations). */
export function engineWindowsHost(engine: EngineSource): WindowsHost {
  let identity: Promise<WindowsIdentity> | null = null;
  return {
    identity: () => {
      identity ??= engine.get().call('whoami', {});
      return identity;
    },
    security: async (paths) => (await engine.get().call('security', { paths })).entries,
    createSecure: async (path, kind, sddl, data) => {
      await engine.get().call('createSecure', { path, kind, sddl, data: data === undefined ? null : data.toString('base64') });
    },
    winHttpSettings: async () => {
      const answer = await engine.get().call('winHttpSettings', {});
      return answer.value === null ? null : Buffer.from(answer.value, 'base64');
    },
  };
}
