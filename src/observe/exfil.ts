/**
 * network.canary-exfil: a planted canary secret (core/canary.ts) seen where data leaves, in any
 * encoding. The channels are what the monitor captured (DNS names, HTTP request lines and Hosts,
 * TLS SNI, the first bytes of TCP streams and UDP datagrams) and the paths of requests the proxy
 * refused (it refuses every request that carries a canary, so none ever goes upstream).
 */
import { str } from './fields.js';
import { canaryMatcher, type Canary } from '../core/canary.js';
import { finding, type Finding } from '../core/finding.js';

/** What a monitor event carried, by channel. */
function carried(event: Record<string, unknown>): Array<{ channel: string; text: string }> {
  const pick = (channel: string, ...values: unknown[]) =>
    values
      .map(str)
      .filter((text): text is string => text !== null)
      .map((text) => ({ channel, text }));
  switch (event.type) {
    case 'dns':
      return pick('DNS name', event.name);
    case 'http':
      return [...pick('HTTP request line', `${str(event.method) ?? ''} ${str(event.path) ?? ''}`), ...pick('HTTP Host', event.host)];
    case 'tls':
      return pick('TLS SNI', event.sni);
    case 'udp':
      return pick('UDP payload', event.firstBytes);
    case 'tcp':
      return pick('TCP payload', event.firstBytes);
    default:
      return [];
  }
}

export interface ExfilInput {
  canaries: Canary[];
  /** The observation's network events: monitor ones carry the attributed package, pid and argv. */
  network: Array<Record<string, unknown>>;
  /** The proxy's findings, attributed: refused requests carry their path. */
  proxy: Finding[];
}

export function exfilFindings(input: ExfilInput): Finding[] {
  if (input.canaries.length === 0) return [];
  const match = canaryMatcher(input.canaries);
  const found = new Map<string, Finding>();
  const report = (channel: string, text: string, who: { package: string | null; pid: unknown; argv: unknown }) => {
    for (const hit of match(text)) {
      const key = `${hit.canary.name}|${channel}|${who.package}`;
      const existing = found.get(key);
      if (existing) {
        existing.evidence.count = Number(existing.evidence.count ?? 1) + 1;
        continue;
      }
      found.set(
        key,
        finding(
          'network.canary-exfil',
          'critical',
          `the canary secret ${hit.canary.name} left in a ${channel}${hit.encoding === 'plain' ? '' : ` (${hit.encoding}-encoded)`}`,
          { secret: hit.canary.name, channel, encoding: hit.encoding, seen: text.slice(0, 300), pid: who.pid ?? null, argv: who.argv ?? null },
          who.package,
        ),
      );
    }
  };
  for (const event of input.network) {
    if (event.source !== 'monitor') continue;
    for (const { channel, text } of carried(event)) report(channel, text, { package: str(event.package), pid: event.pid, argv: event.argv });
  }
  for (const f of input.proxy) {
    const path = str(f.evidence.path);
    if (f.rule === 'integrity.unlocked-request' && path !== null) report('proxy request path', path, { package: f.package, pid: f.evidence.pid, argv: null });
  }
  return [...found.values()];
}
