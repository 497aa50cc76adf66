/**
 * Turn what a run recorded (tracer output, monitor events, the container's diff, the exported
 * tree) into an Observation: the network, filesystem and process events for the report, and the
 * findings they raise, each attributed to a package where that can be known.
 */
import type { Readable } from 'node:stream';
import type { Policy } from '../policy/schema.js';
import type { CanarySet } from '../core/canary.js';
import { finding, type Finding } from '../core/finding.js';
import type { CollectFailure, InstallOutcome } from '../core/outcome.js';
import {
  HOME,
  INPUT_BUILD_LOCKS,
  INPUT_BUILT_PINS,
  INPUT_LOCK,
  INPUT_MOUNT,
  INPUT_PHASES,
  INSTALLER_PYTHON,
  RELAY_PORT,
  STATE_DIR,
  TARGET,
  WHEEL_DIR,
  BUILT_DIR,
} from '../core/layout.js';
import { argvText, importedBy, installerPids, packageOfProcess, pipPids, startupOwners, type PackageOf } from './attribution.js';
import { autorunWriteFindings } from './autorun.js';
import { buildFootprint, meddlingFindings, type BuildFootprint } from './meddling.js';
import {
  credentialHomes,
  filesystemFindings,
  isBytecodeFile,
  isExpectedChange,
  isSensitivePath,
  refusedWriteFindings,
  targetTamperFindings,
  writersOf,
} from './filesystem.js';
import { exfilFindings } from './exfil.js';
import { networkFindings } from './network.js';
import { processFindings } from './processes.js';
import { collapseConflicts } from './conflicts.js';
import { packagingNotes, provenanceFindings, readLockedWheels, type LockedWheel, type VerifiedFile, type Writer } from './provenance.js';
import { scanSitePackages, type StaticScan } from './static-scan.js';
import { timeline, type TimelineEntry } from './timeline.js';
import { parseTrace, type Trace } from './trace.js';
import { changesFromTrace } from './trace-changes.js';

export interface Observation {
  findings: Finding[];
  network: Array<Record<string, unknown>>;
  filesystem: Array<Record<string, unknown>>;
  processes: Array<Record<string, unknown>>;
  timeline: TimelineEntry[];
  /** Who owns each installed file, when this observation scanned the tree (see ObserveInput.siteOwners). */
  siteOwners?: ReadonlyMap<string, string>;
  /** Installed files byte-identical to the locked wheel that shipped them (provenance.ts), when this observation scanned the tree. */
  verified?: ReadonlyMap<string, VerifiedFile>;
  /** Who last wrote each path under site-packages in this phase (full paths). */
  siteWriters?: ReadonlyMap<string, PathWriter>;
  /** What this build phase made, for the builds after it (ObserveInput.build). */
  footprint?: BuildFootprint;
}

export interface ObserveInput {
  outcome: InstallOutcome;
  /** Normalised names of the distributions that may be installed: the lock's, or what investigate's proxy served. */
  distributions: string[];
  policy: Policy;
  /** The target site-packages as a tar stream, when pip succeeded. */
  archive: Readable | null;
  /** The locked wheels the proxy served, verified, on the host: what the installed tree must match. */
  wheels: LockedWheel[];
  /** Top-level names the export writes itself (its manifest): nothing installed may use them. */
  reservedNames: string[];
  /** The canaries planted in the sandbox: their files are ours, their values must never leave. */
  canaries: CanarySet;
  /**
   * Who owns each installed file (by path relative to site-packages), from the scan of the tree:
   * a phase after the install (startup) attributes what runs to the owner of the code it loaded.
   */
  siteOwners?: ReadonlyMap<string, string>;
  /** A build phase: its name in the run, and the footprints of the builds before it (fs.build-meddling). */
  build?: { name: string; earlier: readonly BuildFootprint[] };
}

/** Where pip reaches the index (the monitor's relay), and the sinkhole resolver: seen from the sandbox. */
const RELAY = { address: '127.0.0.1', port: RELAY_PORT };
const DNS_SERVER = { address: '127.0.0.53', port: 53 };

const SITE_PREFIX = `${TARGET}/lib/python3.11/site-packages/`;

/** Who last wrote a path, as one phase's tracer saw it: the process and the package it acted for. */
export interface PathWriter {
  pid: number;
  package: string | null;
}

/**
 * Static findings name the owning RECORD's distribution. A file no RECORD claims is attributed to
 * whichever package's process wrote it, as the tracer saw (`writerOf`, by full path in the sandbox;
 * a phase other than the one that scanned the tree may hold the write: a build before the install).
 */
export function attributeByWriter(findings: Finding[], writerOf: (full: string) => PathWriter | undefined): Finding[] {
  return findings.map((f) => {
    if (f.package !== null || typeof f.evidence.path !== 'string') return f;
    const writer = writerOf(SITE_PREFIX + f.evidence.path);
    return writer === undefined || writer.package === null ? f : { ...f, package: writer.package, evidence: { ...f.evidence, writerPid: writer.pid } };
  });
}

/** The writer of `full`, or, for a directory (a forged dist-info), of something inside it. */
export function writerIn(writers: ReadonlyMap<string, PathWriter>, full: string): PathWriter | undefined {
  return writers.get(full) ?? [...writers].find(([written]) => written.startsWith(`${full}/`))?.[1];
}

/** The packages whose processes were still running when the run was cut short. */
function runningPackages(trace: Trace, packageOf: (pid: number) => string | null): string | null {
  const packages = new Set([...trace.processes.values()].filter((p) => p.end === null).map((p) => packageOf(p.pid)));
  packages.delete(null);
  return packages.size === 1 ? [...packages][0]! : null;
}

/** How the run ended: timeout, memory limit, or a tracer that did not see pip's end. */
function endFindings(outcome: InstallOutcome, trace: Trace, packageOf: (pid: number) => string | null): Finding[] {
  // A record the parser had to cut short cannot vouch for what came after the cut: fail closed.
  const incomplete =
    trace.dropped > 0
      ? [
          finding('monitor.tampered', 'critical', `the trace held more events than we keep (${trace.dropped} dropped); it cannot vouch for the install`, {
            dropped: trace.dropped,
          }),
        ]
      : [];
  // A line the parser could not read, or one longer than anything the sandbox's limits let a real
  // call print, is a call we cannot judge in full: built to blind the tracer until shown otherwise.
  const unread =
    trace.unparsed > 0 || trace.oversized > 0
      ? [
          finding(
            'monitor.tampered',
            'critical',
            `the trace holds ${trace.unparsed} line(s) that could not be read and ${trace.oversized} oversized line(s); it cannot vouch for the install`,
            { unparsed: trace.unparsed, oversized: trace.oversized, heads: trace.heads },
            culpritOfHeads(trace, packageOf),
          ),
        ]
      : [];
  const monitorDead = outcome.monitorAlive
    ? []
    : [finding('monitor.tampered', 'critical', 'the monitor container had stopped before the install ended', { monitorAlive: false })];
  return [
    ...incomplete,
    ...unread,
    ...monitorDead,
    ...collectFindings(outcome.collectFailures ?? []),
    ...sealFindings(outcome),
    ...howItEnded(outcome, trace, packageOf),
  ];
}

/**
 * A build's wheels that could not be copied out of the sandbox user's reach, or its leftovers in
 * pip's temp dirs that could not be removed, after it succeeded (images/supervisor.py): what keeps
 * one build from another's files did not hold, so the run cannot be vouched for.
 */
function sealFindings(outcome: InstallOutcome): Finding[] {
  const { kept, scrubbed } = outcome.status ?? {};
  return [
    ...(kept?.error === undefined
      ? []
      : [
          finding('monitor.tampered', 'critical', "a build's wheels could not be copied out of the sandbox user's reach", {
            keepFailed: kept.error,
            files: kept.files,
          }),
        ]),
    ...(scrubbed?.error === undefined
      ? []
      : [
          finding('monitor.tampered', 'critical', "what a build left in pip's temp dirs could not be removed before the next phase", {
            scrubFailed: scrubbed.error,
          }),
        ]),
  ];
}

/**
 * A read of what the sandbox left that failed while the engine answered (the diff, the installed
 * tree): something the sandbox made broke it, so the run cannot be vouched for. The evidence names
 * the step and what failed; every other finding stands.
 */
export function collectFindings(failures: readonly CollectFailure[]): Finding[] {
  return failures.map((failure) =>
    finding('monitor.tampered', 'critical', `reading the sandbox's ${COLLECT_STEPS[failure.step]} failed after it ran; it cannot vouch for the run`, {
      collectFailed: failure.step,
      error: failure.error,
    }),
  );
}

const COLLECT_STEPS: Record<CollectFailure['step'], string> = {
  state: 'state',
  diff: 'filesystem diff',
  output: 'output',
  'site-archive': 'installed tree',
  'wheel-archive': 'built wheels',
};

/** The package whose processes wrote the unread lines, when they all name one. */
function culpritOfHeads(trace: Trace, packageOf: (pid: number) => string | null): string | null {
  const packages = new Set(
    trace.heads.map((head) => /^(?:\[pid\s+)?(\d{1,10})/.exec(head)?.[1]).map((pid) => (pid === undefined ? null : packageOf(Number(pid)))),
  );
  return packages.size === 1 ? [...packages][0]! : null;
}

function howItEnded(outcome: InstallOutcome, trace: Trace, packageOf: (pid: number) => string | null): Finding[] {
  const culprit = () => runningPackages(trace, packageOf);
  const disk = diskFindings(outcome, culprit);
  // Stopped at the disk cap: the supervisor was killed with it, so its record of the end is missing by our hand.
  if (disk.length > 0 && (outcome.status === null || !outcome.status.tracerIntact)) return disk;
  return [...disk, ...tracerEnd(outcome, culprit)];
}

function diskFindings(outcome: InstallOutcome, culprit: () => string | null): Finding[] {
  // What the sandbox wrote hid from the engine's measure (a path too long for its walk): the cap
  // could not hold, so the sandbox was stopped as at the cap, and nothing vouches for the run.
  const unmeasured =
    outcome.diskUnmeasured === undefined
      ? []
      : [
          finding(
            'monitor.tampered',
            'critical',
            "the sandbox's writes could not be measured, so the disk cap could not hold; it was stopped",
            { diskUnmeasured: outcome.diskUnmeasured, limitBytes: outcome.limits.diskBytes },
            culprit(),
          ),
        ];
  if (outcome.diskExceeded === null) return unmeasured;
  const mib = (bytes: number) => `${Math.round(bytes / 1024 ** 2)} MiB`;
  return [
    ...unmeasured,
    finding(
      'resource.disk',
      'high',
      `the sandbox wrote ${mib(outcome.diskExceeded)} to its filesystem, past the ${mib(outcome.limits.diskBytes)} disk cap, and was stopped`,
      { writtenBytes: outcome.diskExceeded, limitBytes: outcome.limits.diskBytes },
      culprit(),
    ),
  ];
}

function tracerEnd(outcome: InstallOutcome, culprit: () => string | null): Finding[] {
  if (outcome.timedOut) {
    const seconds = outcome.limits.timeoutMs / 1000;
    return [finding('resource.timeout', 'high', `the install ran past --timeout ${seconds}s and was killed`, { timeoutSeconds: seconds }, culprit())];
  }
  if (outcome.oomKilled) {
    return [finding('resource.memory', 'high', 'the install hit the memory limit and was killed', { limitBytes: outcome.limits.memoryBytes }, culprit())];
  }
  if (outcome.status !== null && outcome.trace === null) {
    return [
      finding('monitor.tampered', 'critical', 'the trace could not be read back (missing or over the size cap); it cannot vouch for the install', {
        traceMissing: true,
      }),
    ];
  }
  if (outcome.status?.tracerForcedStop) {
    return [finding('monitor.tampered', 'critical', 'something kept the tracer alive after every sandbox process was killed', { tracerForcedStop: true })];
  }
  if (outcome.status === null || !outcome.status.tracerIntact) {
    return [
      finding('monitor.tampered', 'critical', "the tracer ended before pip did, or its record of pip's end is missing", {
        tracerExit: outcome.status?.tracerExit ?? null,
        statusMissing: outcome.status === null,
      }),
    ];
  }
  return [];
}

/**
 * The proxy cannot tell who asked. A request for an unlocked name made by a package's own process
 * (not by pip) is attributed to that package: the nearest relay connect before it, by time.
 */
function attributeProxyRequests(findings: Finding[], trace: Trace, packageOf: (pid: number) => string | null): Finding[] {
  const relayConnects = trace.events.filter((e) => e.kind === 'connect' && e.address === '127.0.0.1' && e.port === RELAY_PORT && packageOf(e.pid) !== null);
  return findings.map((f) => {
    if (f.rule !== 'integrity.unlocked-request' || f.package !== null || typeof f.evidence.time !== 'string') return f;
    const at = Date.parse(f.evidence.time) / 1000;
    const asker = relayConnects.filter((e) => e.time <= at + 0.05 && e.time >= at - 5).at(-1);
    return asker ? { ...f, package: packageOf(asker.pid), evidence: { ...f.evidence, pid: asker.pid } } : f;
  });
}

/** `127.1.0.3:53`, `[::1]:53`, a socket path. */
function addressText(to: { family: string; address: string; port: number | null }): string {
  if (to.port === null) return to.address;
  return to.family === 'inet6' ? `[${to.address}]:${to.port}` : `${to.address}:${to.port}`;
}

/** A dist-info the lock does not name was not installed by pip from the lock: someone forged it. */
function unlockedDistributions(scan: StaticScan | null, distributions: string[]): Finding[] {
  const locked = new Set(distributions);
  return (scan?.distributions ?? [])
    .filter((d) => !locked.has(d.name))
    .map((d) =>
      finding('static.unrecorded-file', 'high', `${d.distInfo} is in site-packages but the lock does not name ${d.name}`, {
        path: d.distInfo,
        reason: 'distribution not in the lock',
      }),
    );
}

export async function observe(input: ObserveInput): Promise<Observation> {
  // Begun first: the locked wheels are read while the trace is parsed and the tree scanned.
  const wheelReads = input.archive ? readLockedWheels(input.wheels) : [];
  const homes = credentialHomes(HOME);
  // Only probes (stat, readlink) of credential paths are judged; keeping the rest would fill the
  // event cap with the tens of thousands every Python start makes.
  const trace = parseTrace(input.outcome.trace ?? '', { initialCwd: HOME, keepProbe: (p) => isSensitivePath(p, homes) });
  const cache = new Map<number, string | null>();
  // In the import phase a process acts for the distribution whose module the importer started it
  // to import; in the startup phase, for the owner of the code it last loaded; in every other
  // phase, for the package whose build directory it was in.
  const phase = input.outcome.phase;
  const siteOwners = input.siteOwners;
  const attribute: PackageOf =
    phase === 'import'
      ? importedBy(trace)
      : phase === 'startup'
        ? startupOwners(trace, SITE_PREFIX, (rel) => siteOwners?.get(rel) ?? null)
        : (pid: number) => packageOfProcess(trace, pid);
  const packageOf: PackageOf = (pid, time) => {
    if (phase === 'startup' && time !== undefined) return attribute(pid, time);
    if (!cache.has(pid)) cache.set(pid, attribute(pid));
    return cache.get(pid) ?? null;
  };
  const argvOf = (pid: number): string[] => trace.processes.get(pid)?.argv ?? [];
  const pipOwn = pipPids(trace, INSTALLER_PYTHON);

  const layout = {
    target: TARGET,
    home: HOME,
    state: STATE_DIR,
    // Ours, like the mounts: the inputs copied in, the canaries, and the built wheels the supervisor keeps.
    mounts: [
      INPUT_MOUNT,
      INPUT_LOCK,
      INPUT_PHASES,
      `${INPUT_BUILD_LOCKS}/`,
      INPUT_BUILT_PINS,
      `${BUILT_DIR}/`,
      ...input.canaries.files.map((f) => `${HOME}/${f.path}`),
    ],
    allowed: input.policy.writes.allow,
  };
  const network = networkFindings({
    trace,
    monitorEvents: input.outcome.monitorEvents,
    packageOf,
    argvOf,
    relay: RELAY,
    dnsServer: DNS_SERVER,
    pipPids: pipOwn,
  });
  const filesystem = filesystemFindings({
    // Without the engine's diff, what this phase's trace changed stands in for it.
    changes: input.outcome.diffUnread ? changesFromTrace(trace) : input.outcome.changes,
    trace,
    layout,
    packageOf,
    argvOf,
    pipPids: pipOwn,
  });
  const processes = processFindings({
    trace,
    lingering: input.outcome.status?.lingering ?? [],
    detached: input.outcome.status?.detached ?? [],
    execWatch: input.policy.process.execWatch,
    execAliases: input.outcome.status?.execAliases ?? {},
    writable: [TARGET],
    packageOf,
  });
  const installers = installerPids(trace);
  const scan = input.archive
    ? await scanSitePackages(input.archive, {
        knownGoodPth: input.policy.knownGoodPth,
        knownGoodScripts: input.policy.knownGoodScripts,
        knownGoodStdlib: input.policy.knownGoodStdlib,
        reservedNames: input.reservedNames,
      })
    : null;
  const writers = writersOf(trace);
  const siteWriters = new Map<string, PathWriter>(
    [...writers].filter(([written]) => written.startsWith(SITE_PREFIX)).map(([written, pid]) => [written, { pid, package: packageOf(pid) }]),
  );
  const writerOf = (rel: string): Writer | null => {
    const pid = writers.get(SITE_PREFIX + rel);
    return pid === undefined || installers.has(pid) ? null : { package: packageOf(pid), pid, argv: argvText(argvOf(pid)) };
  };
  const provenance = scan ? await provenanceFindings(scan, wheelReads, writerOf) : { findings: [], verified: new Map<string, VerifiedFile>() };
  const proxy = attributeProxyRequests(input.outcome.findings, trace, packageOf);
  const exfil = exfilFindings({
    canaries: input.canaries.canaries,
    network: network.events,
    proxy,
    sends: trace.events.flatMap((e) =>
      e.kind === 'send'
        ? [{ syscall: e.syscall, to: e.to && addressText(e.to), payload: e.payload, pid: e.pid, package: packageOf(e.pid), argv: argvText(argvOf(e.pid)) }]
        : [],
    ),
    sendBytesDropped: trace.payloadDropped,
  });
  // What the monitor captured was for the canary search; the report says what was found in it, not all of it.
  const events = network.events.map(({ payload: _payload, ...event }) => event);

  return {
    findings: [
      ...proxy,
      ...exfil,
      ...endFindings(input.outcome, trace, packageOf),
      ...network.findings,
      ...filesystem.findings,
      ...targetTamperFindings({ trace, target: TARGET, installers, packageOf, argvOf }),
      // The wheel dir is pip's installer's, in the build phase only: anything else that writes
      // there plants or changes a wheel the install phase would take as built.
      ...targetTamperFindings({ trace, target: WHEEL_DIR, installers: input.outcome.phase === 'build' ? installers : new Set(), packageOf, argvOf }),
      ...refusedWriteFindings({ trace, layout, pipPids: pipOwn, packageOf, argvOf }),
      ...(input.build ? meddlingFindings({ trace, packageOf, argvOf, earlier: input.build.earlier }) : []),
      ...autorunWriteFindings({ trace, target: TARGET, pipPids: pipOwn, packageOf, argvOf }),
      ...processes.findings,
      // Distributions that install the same files are one finding, not one per file and side.
      ...collapseConflicts([
        ...attributeByWriter([...packagingNotes(scan?.findings ?? [], provenance.verified), ...unlockedDistributions(scan, input.distributions)], (full) =>
          writerIn(siteWriters, full),
        ),
        ...provenance.findings,
      ]),
    ],
    verified: scan ? provenance.verified : undefined,
    siteOwners: scan ? new Map(scan.files.flatMap((f) => (f.owner === null ? [] : [[f.path, f.owner] as const]))) : undefined,
    siteWriters,
    footprint: input.build && buildFootprint(input.build.name, trace, packageOf, input.build.earlier),
    network: events,
    filesystem: filesystem.events,
    processes: processes.events,
    timeline: timeline({
      trace,
      network: events,
      packageOf,
      started: input.outcome.status?.started ?? null,
      // Bytecode caching is the interpreter's (the import phase writes it under a prefix of its
      // own); a .pyc written into the target is still fs.target-tamper, a finding.
      expectedWrites: (p) => p.startsWith('/dev/') || isBytecodeFile(p) || isExpectedChange({ path: p, kind: 'modified' }, layout),
      credentialHomes: homes,
      relay: RELAY,
      dnsServer: DNS_SERVER,
    }),
  };
}
