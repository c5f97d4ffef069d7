/**
 * Regular expressions from a server's configuration, run with a time budget: the configuration may
 * come from a compromised server or an untrusted image, and a pattern such as `(.|.)*Q` takes
 * exponential time. No syntactic guard catches every such pattern, so each match runs in one worker
 * thread per run (started on first use, reused), while the caller waits synchronously on a shared
 * flag up to the budget. A match that runs out ends the worker (a new one starts for the next) and
 * is reported as a timeout; the evaluation model stays synchronous.
 */
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';

/** Milliseconds one match may take before it is abandoned; real patterns on probe inputs take microseconds. */
export const REGEX_BUDGET_MS = 200;

/** After this many matches ran out in one run, later ones get REGEX_SHORT_BUDGET_MS, so many hostile patterns cannot add up to a long audit. */
export const REGEX_TIMEOUTS_BEFORE_SHORT_BUDGET = 10;

/** The budget once REGEX_TIMEOUTS_BEFORE_SHORT_BUDGET matches have run out. */
export const REGEX_SHORT_BUDGET_MS = 20;

/** How one match ended. */
export type BoundedMatch = { kind: 'match'; captures: string[] } | { kind: 'no-match' } | { kind: 'timeout'; budgetMs: number } | { kind: 'error'; message: string };

// Plain JavaScript (an eval worker), so the same code runs from src/ under type stripping and from dist/.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const flag = new Int32Array(workerData.signal);
const port = workerData.port;
const compiled = new Map();
port.on('message', (request) => {
  let answer;
  try {
    const key = request.flags + '/' + request.source;
    let re = compiled.get(key);
    if (re === undefined) {
      re = new RegExp(request.source, request.flags);
      compiled.set(key, re);
    }
    re.lastIndex = 0;
    const m = re.exec(request.input);
    answer = m === null ? { kind: 'no-match' } : { kind: 'match', captures: Array.from(m, (g) => (g === undefined ? '' : g)) };
  } catch (error) {
    answer = { kind: 'error', message: String(error && error.message ? error.message : error) };
  }
  port.postMessage(answer);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
Atomics.store(flag, 0, 1);
Atomics.notify(flag, 0);
`;

/** How long the worker may take to start before regular expressions are reported as not evaluated. */
const STARTUP_MS = 10_000;

interface Runner {
  worker: Worker;
  port: MessagePort;
  flag: Int32Array;
  /** Whether the worker said it is up (the flag it sets once at start was seen). */
  ready: boolean;
}

let runner: Runner | null = null;
let timeouts = 0;

/** Starts a worker without waiting for it: its start (about 0.1 s) overlaps whatever the run does meanwhile. */
function spawnRunner(): Runner {
  const signal = new SharedArrayBuffer(4);
  const flag = new Int32Array(signal);
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { signal, port: port2 }, transferList: [port2] });
  worker.unref();
  worker.on('error', () => {
    // reported to the waiting caller as a timeout or an error; nothing else listens
  });
  return { worker, port: port1, flag, ready: false };
}

/** The run's worker, up and waiting for a match; null when it did not start in time. */
function readyRunner(): Runner | null {
  runner ??= spawnRunner();
  if (!runner.ready) {
    if (Atomics.wait(runner.flag, 0, 0, STARTUP_MS) === 'timed-out') {
      void runner.worker.terminate();
      runner.port.close();
      runner = null;
      return null;
    }
    runner.ready = true;
  }
  return runner;
}

/**
 * Starts the worker now, so that it is up by the time the first pattern is matched: a run calls this
 * when it starts its PowerShell engine, whose start takes longer. Does nothing if one is running.
 */
export function prestartRegexWorker(): void {
  runner ??= spawnRunner();
}

/** Runs `new RegExp(source, flags).exec(input)` within the time budget; the pattern must already compile. */
export function execBounded(source: string, flags: string, input: string): BoundedMatch {
  const budgetMs = timeouts >= REGEX_TIMEOUTS_BEFORE_SHORT_BUDGET ? REGEX_SHORT_BUDGET_MS : REGEX_BUDGET_MS;
  const current = readyRunner();
  if (current === null) return { kind: 'error', message: 'the regular expression worker did not start' };
  Atomics.store(current.flag, 0, 0);
  current.port.postMessage({ source, flags, input });
  if (Atomics.wait(current.flag, 0, 0, budgetMs) === 'timed-out') {
    // Ending the worker interrupts the match; the next call starts a fresh one.
    void current.worker.terminate();
    current.port.close();
    runner = null;
    timeouts++;
    return { kind: 'timeout', budgetMs };
  }
  for (let spin = 0; spin < 1000; spin++) {
    const received = receiveMessageOnPort(current.port);
    if (received !== undefined) return received.message as BoundedMatch;
  }
  return { kind: 'error', message: 'the regular expression worker sent no answer' };
}

/** Ends the worker (tests, and callers that want the thread gone before exit). */
export async function stopRegexWorker(): Promise<void> {
  const current = runner;
  runner = null;
  timeouts = 0;
  if (current !== null) {
    current.port.close();
    await current.worker.terminate();
  }
}
