/**
 * The investigator's timeline of one phase: per package, in time order, each DNS name, connection,
 * HTTP request, file written outside the target, sensitive path touched and process spawned, with
 * its offset from the phase's start. pip's own processes (package null) are left out: the timeline
 * is what the packages did.
 */
import { num, str } from './fields.js';
import { argvText } from './attribution.js';
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
  packageOf: (pid: number) => string | null;
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
  const raw: Array<Omit<TimelineEntry, 'offset' | 'package'> & { time: number; package: string | null }> = [];
  // A path is touched once per process on the timeline: open() then fstat() of it is one touch.
  const touched = new Set<string>();
  for (const event of trace.events) {
    const pkg = input.packageOf(event.pid);
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
  const kept = new Map<string, number>();
  const entries: TimelineEntry[] = [];
  for (const { time, package: pkg, ...rest } of raw) {
    if (pkg === null) continue;
    const n = (kept.get(pkg) ?? 0) + 1;
    kept.set(pkg, n);
    if (n <= TIMELINE_PER_PACKAGE) entries.push({ offset: Math.round((time - start) * 1000) / 1000, package: pkg, ...rest });
  }
  for (const [pkg, n] of kept) {
    if (n > TIMELINE_PER_PACKAGE)
      entries.push({
        offset: entries.filter((e) => e.package === pkg).at(-1)?.offset ?? 0,
        package: pkg,
        kind: 'more',
        what: `${n - TIMELINE_PER_PACKAGE} more not shown`,
        pid: null,
      });
  }
  return entries;
}
