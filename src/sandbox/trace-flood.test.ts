/**
 * Issue 10: a trace flood. A package that makes millions of traced calls leaves a trace larger than
 * the host reads back (256 MiB). The session must stop reading at the cap, not pull the whole file
 * out of the engine, and hand on no trace with the phase's status intact: observe/ then fails the
 * run closed with `monitor.tampered` ("the trace could not be read back", evidence
 * `traceMissing: true`; observe/index.test.ts), never a pass judged on part of the record.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import pino from 'pino';
import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../core/outcome.js';
import { STATE_DIR } from '../core/layout.js';
import { noPipOptions } from '../lock/pip-options.js';
import { loadPolicy } from '../policy/load.js';
import { FakeEngine, type FakeSandboxRun } from '../runtime/fake.js';
import type { MonitorListener, RunSpec, SandboxRun } from '../runtime/port.js';
import { SandboxSession } from './session.js';

const TRACE = `${STATE_DIR}/install.strace.log`;
/** What the session reads of a trace at most (session.ts `readText`). */
const CAP = 256 * 1024 ** 2;
/** What the flooded trace claims to hold: four times the cap. */
const DECLARED = 4 * CAP;

/** What the flood's producer made, and whether the stream was closed when the reader gave up. */
interface Flood {
  produced: number;
  closed: boolean;
}

/** A trace line of the kind a stat loop prints, repeated into 1 MiB chunks. */
const LINE = '12 1795820988.000001 newfstatat(AT_FDCWD</home/user>, "/nonexistent", 0x7ffd0000, 0) = -1 ENOENT (No such file or directory)\n';
const CHUNK = Buffer.from(LINE.repeat(Math.floor(1024 ** 2 / LINE.length)));

/** `docker cp` of one file of DECLARED bytes, produced only as fast as the reader pulls it. */
function floodArchive(flood: Flood): Readable {
  const pack = tarStream.pack();
  const entry = pack.entry({ name: path.posix.basename(TRACE), size: DECLARED, mode: 0o644 });
  const pump = (): void => {
    while (!pack.destroyed && flood.produced < DECLARED) {
      const chunk = CHUNK.subarray(0, Math.min(CHUNK.length, DECLARED - flood.produced));
      flood.produced += chunk.length;
      if (!entry.write(chunk)) {
        entry.once('drain', pump);
        return;
      }
    }
    if (flood.produced >= DECLARED) {
      entry.end(() => pack.finalize());
    }
  };
  // The reader giving up reaches the producer as this error: expected, and what stops it.
  entry.on('error', () => undefined);
  pack.once('close', () => (flood.closed = true));
  pump();
  return pack as unknown as Readable;
}

/** The fake engine, except that the install phase's trace is the flood. */
class FloodEngine extends FakeEngine {
  readonly flood: Flood = { produced: 0, closed: false };

  override async startRun(spec: RunSpec, listener: MonitorListener): Promise<SandboxRun> {
    const run = (await super.startRun(spec, listener)) as FakeSandboxRun;
    const read = run.readArchive.bind(run);
    run.readArchive = (target: string) => (target === TRACE ? Promise.resolve(floodArchive(this.flood)) : read(target));
    return run;
  }
}

describe('a trace over the cap', () => {
  it('is read up to the cap and no further, and handed on as missing with the phase status intact', async () => {
    const status = {
      phase: 'install',
      started: 10,
      ended: 20,
      rootPid: 12,
      pip: { how: 'exited', value: 0 },
      tracerIntact: true,
      tracerExit: 0,
      lingering: [],
    };
    const engine = new FloodEngine({ exitCode: 0, files: { [`${STATE_DIR}/status.json`]: JSON.stringify({ phases: [status] }) }, trees: {} });
    const run = await (async () => {
      await using session = await SandboxSession.open({
        client: engine,
        image: 'sandbox-install:fake',
        plan: { file: 'requirements.lock', requirements: [], indexUrl: null, extraIndexUrls: [], pipOptions: noPipOptions() },
        upstreams: { indexUrl: `file://${await mkdtemp(path.join(tmpdir(), 'sandbox-install-idx-'))}`, extraIndexUrls: [] },
        policy: await loadPolicy('default'),
        cacheDir: await mkdtemp(path.join(tmpdir(), 'sandbox-install-cache-')),
        limits: DEFAULT_LIMITS,
        logger: pino({ level: 'silent' }),
        signal: new AbortController().signal,
      });
      return await session.run();
    })();

    expect(run.phases).toHaveLength(1);
    const [install] = run.phases;
    expect(install).toMatchObject({ phase: 'install', pipExitCode: 0, trace: null, status: { tracerIntact: true, pip: { how: 'exited', value: 0 } } });
    // The reader stopped at the cap: what was made past it is what the streams buffer (a few MiB),
    // not the other three quarters of the file.
    expect(engine.flood.produced).toBeGreaterThan(CAP);
    expect(engine.flood.produced).toBeLessThan(CAP + 16 * 1024 ** 2);
    expect(engine.flood.closed).toBe(true);
    expect(engine.runs.every((r) => r.removed)).toBe(true);
  }, 60_000);
});
