/**
 * Network findings from two witnesses: the monitor (DNS queries, what reached the fake services)
 * and the tracer (every connect, including raw IPs and unix sockets that nothing answered).
 */
import { num, str } from './fields.js';
import { argvText, type PackageOf } from './attribution.js';
import { finding, type Finding } from '../core/finding.js';
import type { Trace, TraceEvent } from './trace.js';

type ConnectEvent = Extract<TraceEvent, { kind: 'connect' }>;

export interface NetworkContext {
  trace: Trace;
  monitorEvents: Array<Record<string, unknown>>;
  packageOf: PackageOf;
  argvOf: (pid: number) => string[];
  relay: { address: string; port: number };
  dnsServer: { address: string; port: number };
  /** pip's own processes: the only ones that may talk to the relay. */
  pipPids: Set<number>;
}

/** glibc probes nscd's socket on every name lookup; the lookup itself is what we report. */
export const BENIGN_UNIX_SOCKETS = new Set(['/var/run/nscd/socket', '/run/nscd/socket']);

function splitHostPort(value: string | null): { address: string; port: number } | null {
  if (!value) return null;
  const at = value.lastIndexOf(':');
  const port = Number(value.slice(at + 1));
  return at > 0 && Number.isInteger(port) ? { address: value.slice(0, at), port } : null;
}

/** Dedupe by a key: the first event stands for the rest, with a count. */
class Deduper {
  private readonly seen = new Map<string, Finding>();
  add(key: string, make: () => Finding): void {
    const existing = this.seen.get(key);
    if (existing) existing.evidence.count = Number(existing.evidence.count ?? 1) + 1;
    else this.seen.set(key, make());
  }
  get findings(): Finding[] {
    return [...this.seen.values()];
  }
}

export function networkFindings(ctx: NetworkContext): { findings: Finding[]; events: Array<Record<string, unknown>> } {
  const connects = ctx.trace.events.filter((e): e is ConnectEvent => e.kind === 'connect');
  const nameOf = new Map<string, string>();
  for (const event of ctx.monitorEvents) {
    if (event.type === 'dns-map' && str(event.address) && str(event.name)) nameOf.set(str(event.address)!, str(event.name)!);
  }
  const isDns = (c: ConnectEvent) => c.address === ctx.dnsServer.address && c.port === ctx.dnsServer.port;
  const isRelay = (c: ConnectEvent) => c.address === ctx.relay.address && c.port === ctx.relay.port;

  /** The process that talked to the resolver last before `time`: the one whose query this is. */
  const dnsAsker = (time: number): ConnectEvent | undefined => connects.filter((c) => isDns(c) && c.time <= time + 0.05 && c.time >= time - 10).at(-1);
  /** The process that connected to a sinkholed address and port last before `time`. */
  const connector = (address: string, port: number, time: number): ConnectEvent | undefined =>
    connects.filter((c) => c.address === address && c.port === port && c.time <= time + 0.05).at(-1);

  const found = new Deduper();
  const events: Array<Record<string, unknown>> = [];
  const who = (c: ConnectEvent | undefined) =>
    c ? { pid: c.pid, argv: argvText(ctx.argvOf(c.pid)), package: ctx.packageOf(c.pid, c.time) } : { pid: null, argv: null, package: null };

  for (const event of ctx.monitorEvents) {
    const time = num(event.time) ?? 0;
    if (event.type === 'dns') {
      const name = str(event.name) ?? '';
      const asker = who(dnsAsker(time));
      events.push({ source: 'monitor', ...event, ...asker });
      found.add(`dns|${asker.package}|${name}`, () =>
        finding('network.dns', 'high', `DNS query for ${name}`, { name, qtype: event.qtype, pid: asker.pid, argv: asker.argv }, asker.package),
      );
    } else if (event.type === 'http' || event.type === 'tls' || event.type === 'tcp' || event.type === 'udp') {
      const dst = splitHostPort(str(event.dst));
      const traced = dst ? connector(dst.address, dst.port, time) : undefined;
      const by = who(traced);
      const host = str(event.host) ?? str(event.sni) ?? (dst ? (nameOf.get(dst.address) ?? null) : null);
      events.push({ source: 'monitor', ...event, resolvedHost: host, ...by });
      if (event.type === 'tcp' || event.type === 'udp') {
        // The tracer's connect or send reports this one, with its process. When the tracer has
        // none, the monitor's word stands on its own: something reached the network unseen.
        if (traced) continue;
        const where = `${host ? `${host} (${dst?.address})` : (str(event.dst) ?? '?')}`;
        found.add(`unseen|${event.type}|${str(event.dst)}`, () =>
          finding('network.connect', 'high', `${event.type === 'tcp' ? 'a connection' : 'a datagram'} reached ${where} that the tracer did not see`, {
            address: dst?.address ?? null,
            port: dst?.port ?? null,
            host,
            protocol: event.type,
            src: str(event.src),
            firstBytes: str(event.firstBytes),
            witness: 'monitor',
          }),
        );
        continue;
      }
      const what = event.type === 'http' ? `${str(event.method)} http://${host ?? str(event.dst)}${str(event.path) ?? ''}` : `TLS to ${host}`;
      found.add(`http|${by.package}|${what}`, () =>
        finding(
          'network.http',
          'high',
          `a request reached the fake service: ${what}`,
          event.type === 'http'
            ? { method: event.method, host, path: event.path, dst: event.dst, pid: by.pid, argv: by.argv }
            : { sni: event.sni, host, dst: event.dst, pid: by.pid, argv: by.argv },
          by.package,
        ),
      );
    } else if (event.type === 'truncated' || event.type === 'monitor-error') {
      // The monitor stopped recording, or a listener failed: it can no longer vouch for the network.
      events.push({ source: 'monitor', ...event });
      found.add(`monitor|${event.type}`, () =>
        finding('monitor.tampered', 'critical', `the monitor could not record everything (${event.type})`, {
          event: event.type,
          error: str(event.error),
          limit: num(event.limit),
        }),
      );
    } else if (event.type === 'dns-malformed') {
      const asker = who(dnsAsker(time));
      events.push({ source: 'monitor', ...event, ...asker });
      found.add(`dns-malformed|${asker.package}`, () =>
        finding(
          'network.dns',
          'high',
          'a malformed DNS packet reached the sinkhole',
          { malformed: true, bytes: num(event.bytes), src: str(event.src), pid: asker.pid, argv: asker.argv },
          asker.package,
        ),
      );
    } else if (event.type === 'relay-error') {
      events.push({ source: 'monitor', ...event });
    }
  }

  for (const c of connects) {
    const pkg = ctx.packageOf(c.pid, c.time);
    const argv = argvText(ctx.argvOf(c.pid));
    events.push({ source: 'tracer', ...c, package: pkg });
    if (c.family === 'unix') {
      if (BENIGN_UNIX_SOCKETS.has(c.address)) continue;
      found.add(`unix|${pkg}|${c.address}`, () =>
        finding('network.unix-socket', 'high', `connect to unix socket ${c.address}`, { path: c.address, ok: c.ok, errno: c.errno, pid: c.pid, argv }, pkg),
      );
    } else if (isRelay(c) && !ctx.pipPids.has(c.pid)) {
      // Build code talking to the index itself (query strings, odd methods, unpinned files):
      // the relay is pip's, nobody else's.
      found.add(`relay|${pkg}|${c.pid}`, () =>
        finding(
          'network.connect',
          'high',
          `a process that is not pip connected to the index relay: ${argv}`,
          { address: c.address, port: c.port, host: 'index relay', syscall: c.syscall, ok: c.ok, errno: c.errno, pid: c.pid, argv },
          pkg,
        ),
      );
    } else if ((c.family === 'inet' || c.family === 'inet6') && !isRelay(c) && !isDns(c)) {
      const host = nameOf.get(c.address) ?? null;
      found.add(`connect|${pkg}|${c.address}|${c.port}`, () =>
        finding(
          'network.connect',
          'high',
          `${c.syscall} to ${host ? `${host} (${c.address})` : c.address}:${c.port}`,
          { address: c.address, port: c.port, host, syscall: c.syscall, ok: c.ok, errno: c.errno, pid: c.pid, argv },
          pkg,
        ),
      );
    }
  }
  return { findings: found.findings, events };
}
