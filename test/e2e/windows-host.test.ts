// The TypeScript side of the Windows operations reaches the real engine (the names and fields of the
// protocol agree); off Windows the engine refuses the Windows-only ones and reports no WinHTTP proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LazyEngine, startEngine } from '../../src/powershell/door.ts';
import { engineWindowsHost, windowsHostFor } from '../../src/powershell/windows-host.ts';
import { ExmitError } from '../../src/errors.ts';

test('the Windows host over the real engine: one process, the operations answer, off Windows they refuse', async () => {
  let starts = 0;
  const engine = new LazyEngine(() => {
    starts++;
    return startEngine({});
  });
  try {
    assert.equal(windowsHostFor(engine, 'linux'), null);
    assert.equal(engine.started, false, 'nothing starts PowerShell off Windows');
    const host = engineWindowsHost(engine);
    assert.equal(await host.winHttpSettings(), null);
    const first = engine.get();
    for (const call of [() => host.identity(), () => host.security(['/tmp']), () => host.createSecure('/tmp/exmit-never', 'folder', 'D:P(A;;FA;;;SY)')]) {
      await assert.rejects(call(), (e: unknown) => e instanceof ExmitError && /: Windows only$/.test(e.message));
    }
    assert.equal(engine.get(), first, 'every request went to the same engine');
    assert.equal(starts, 1);
  } finally {
    await engine.close();
  }
});
