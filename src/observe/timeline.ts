/**
 * The investigator's timeline of one phase: per package, in time order, each DNS name, connection,
 * HTTP request, file written outside the target, sensitive path touched and process spawned, with
 * its offset from the phase's start. pip's own processes (package null) are left out: the timeline
 * is what the packages did.
 */
import { num, str } from './fields.js';
import { argvText, type PackageOf } from './attribution.js';
import { isSensitivePath } from './filesystem.js';
import { BENIGN_UNIX_SOCKETS } from './network.js';
import type { Trace } from './trace.js';

export type TimelineKind = 'dns' | 'connect' | 'http' | 'tls' | 'datagram' | 'write' | 'sensitive' | 'exec' | 'more';

export interface TimelineEntry {
  /** Seconds since the phase started. */
  offset: number;
  package: string;
  kind: TimelineKind;
  what: string;
  pid: number | null;
  /** Set by the workflow, which observes phase by phase. */
  phase?: string;
}

export interface TimelineInput {
  trace: Trace;
  /** The observation's network events (monitor ones attributed). */
  network: Array<Record<string, unknown>>;
  packageOf: PackageOf;
  /** Unix time the phase started; the first traced event when unknown. */
  started: number | null;
  /** Writes under these are the install's own (the target, pip's temp dirs, /dev). */
  expectedWrites: (path: string) => boolean;
  credentialHomes: string[];
  relay: { address: string; port: number };
  dnsServer: { address: string; port: number };
}

/** Entries kept per package and phase; the rest are counted in a last `…` entry. */
export const TIMELINE_PER_PACKAGE = 200;

export function timeline(input: TimelineInput): TimelineEntry[] {
  const { trace } = input;
  const raw: Array<Omit<TimelineEntry, 'offset'> & { time: number }> = [];
  // A path is touched once per process on the timeline: open() then fstat() of it is one touch.
  const touched = new Set<string>();
  for (const event of trace.events) {
    const pkg = input.packageOf(event.pid, event.time);
    if (pkg === null) continue;
    const base = { time: event.time, package: pkg, pid: event.pid };
    if (event.kind === 'exec' && event.ok) raw.push({ ...base, kind: 'exec', what: argvText(event.argv) });
    else if (event.kind === 'open' && isSensitivePath(event.path, input.credentialHomes)) {
      if (touched.has(`${event.pid}\0${event.path}`)) continue;
      touched.add(`${event.pid}\0${event.path}`);
      raw.push({ ...base, kind: 'sensitive', what: `${event.syscall} ${event.path}${event.ok ? '' : ` (${event.errno ?? 'failed'})`}` });
    } else if (event.kind === 'open' && event.write && event.ok && !input.expectedWrites(event.path)) raw.push({ ...base, kind: 'write', what: event.path });
    else if (event.kind === 'connect' && event.family !== 'unix') {
      const dns = event.address === input.dnsServer.address && event.port === input.dnsServer.port;
      if (dns) continue; // the query itself comes from the monitor, with its name
      const relay = event.address === input.relay.address && event.port === input.relay.port;
      raw.push({ ...base, kind: 'connect', what: `${event.syscall} ${relay ? 'index relay' : `${event.address}:${event.port}`}` });
    } else if (event.kind === 'connect' && !BENIGN_UNIX_SOCKETS.has(event.address))
      raw.push({ ...base, kind: 'connect', what: `unix socket ${event.address}` });
  }
  for (const event of input.network) {
    const pkg = str(event.package);
    const time = num(event.time);
    if (event.source !== 'monitor' || pkg === null || time === null) continue;
    const base = { time, package: pkg, pid: num(event.pid) };
    const host = str(event.resolvedHost) ?? str(event.dst) ?? '?';
    if (event.type === 'dns') raw.push({ ...base, kind: 'dns', what: str(event.name) ?? '?' });
    else if (event.type === 'http') raw.push({ ...base, kind: 'http', what: `${str(event.method) ?? '?'} http://${host}${str(event.path) ?? ''}` });
    else if (event.type === 'tls') raw.push({ ...base, kind: 'tls', what: `TLS ${str(event.sni) ?? host}` });
    else if (event.type === 'udp' || event.type === 'tcp')
      raw.push({ ...base, kind: 'datagram', what: `${event.type} ${host}: ${(str(event.firstBytes) ?? '').slice(0, 80)}` });
  }
  const start = input.started ?? trace.events[0]?.time ?? 0;
  raw.sort((a, b) => a.time - b.time);
  /** Per package: entries seen, and the offset of the last one kept. */
  const kept = new Map<string, { seen: number; last: number }>();
  const entries: TimelineEntry[] = [];
  for (const { time, package: pkg, ...rest } of raw) {
    const tally = kept.get(pkg) ?? { seen: 0, last: 0 };
    kept.set(pkg, tally);
    if (++tally.seen > TIMELINE_PER_PACKAGE) continue;
    tally.last = Math.round((time - start) * 1000) / 1000;
    entries.push({ offset: tally.last, package: pkg, ...rest });
  }
  for (const [pkg, { seen, last }] of kept) {
    if (seen > TIMELINE_PER_PACKAGE)
      entries.push({ offset: last, package: pkg, kind: 'more', what: `${seen - TIMELINE_PER_PACKAGE} more not shown`, pid: null });
  }
  return entries;
}
