/**
 * network.canary-exfil: a planted canary secret (core/canary.ts) seen where data leaves, whole or
 * in part, in any encoding the matcher knows. Where it looks, in this order:
 *
 * - what reached the monitor, whole up to its caps (core/outcome.ts MONITOR_CAPTURE): DNS names and
 *   the query packets that carried them; HTTP request lines, Hosts, headers and bodies; TLS SNI and
 *   ClientHellos; TCP streams; UDP datagrams;
 * - the paths of requests the proxy refused (it refuses every request that carries a canary, so
 *   none ever goes upstream);
 * - the buffers of every traced sendto, sendmsg and sendmmsg, as strace printed them (4,096 bytes
 *   per buffer): what the monitor never received (a datagram to a port nothing listens on, a send
 *   to an unreachable address) is still an attempt.
 *
 * One finding per secret, channel and package; a secret a package was already found sending in one
 * of an event's channels is not reported again for the same event's later ones (a Host is also in
 * the headers), nor for the tracer's copy of what the monitor or the proxy already showed.
 *
 * The report carries the match, not the stream: the channel, the encoding, how many of the secret's
 * characters were seen, the offset, and an excerpt of at most EXCERPT_MAX characters around it.
 * What could not be searched fails the run as monitor.tampered: a capture the monitor cut, send
 * buffers past the trace's cap, or more bytes than SEARCHED_BYTES_PER_RUN, the bound the partial
 * match's length was computed for.
 */
import { str } from './fields.js';
import { canaryMatcher, SEARCHED_BYTES_PER_RUN, type Canary, type CanaryHit } from '../core/canary.js';
import { finding, type Finding } from '../core/finding.js';

/** images/monitor.py HEAD_CAP: an HTTP head ends within this many bytes or is not one. */
const HEAD_CAP = 65536;

interface Carried {
  channel: string;
  data: string | Uint8Array;
}

/** The bytes the monitor kept of an event (`payload`, base64), or null. */
function payloadOf(event: Record<string, unknown>): Buffer | null {
  const payload = str(event.payload);
  return payload === null || payload === '' ? null : Buffer.from(payload, 'base64');
}

/** What a monitor event carried, by channel, most specific first. */
function carried(event: Record<string, unknown>): Carried[] {
  const out: Carried[] = [];
  const add = (channel: string, data: string | Uint8Array | null) => {
    if (data !== null && data.length > 0) out.push({ channel, data });
  };
  const payload = payloadOf(event);
  switch (event.type) {
    case 'dns':
      add('DNS name', str(event.name));
      add('DNS packet', payload);
      break;
    case 'dns-malformed':
      add('DNS packet', payload);
      break;
    case 'http': {
      add('HTTP request line', `${str(event.method) ?? ''} ${str(event.path) ?? ''}`);
      add('HTTP Host', str(event.host));
      // Where the monitor found the head's end: a blank line (CRLF or bare LF) in its first 64 KiB.
      const end = payload === null ? null : /\r?\n\r?\n/.exec(payload.subarray(0, HEAD_CAP).toString('latin1'));
      add('HTTP headers', payload === null ? null : end === null ? payload : payload.subarray(0, end.index));
      add('HTTP body', payload === null || end === null ? null : payload.subarray(end.index + end[0].length));
      break;
    }
    case 'tls':
      add('TLS SNI', str(event.sni));
      add('TLS ClientHello', payload);
      break;
    case 'tcp':
      add('TCP stream', payload);
      break;
    case 'udp':
      add('UDP datagram', payload);
      break;
  }
  return out;
}

/** A traced send's bytes, attributed. */
export interface TracedSend {
  syscall: string;
  /** Where it went (`127.1.0.3:9999`, a socket path), or null when the trace does not say. */
  to: string | null;
  payload: string;
  pid: number;
  package: string | null;
  argv: string | null;
}

export interface ExfilInput {
  canaries: Canary[];
  /** The observation's network events: monitor ones carry the attributed package, pid and argv, and the captured `payload`. */
  network: Array<Record<string, unknown>>;
  /** The proxy's findings, attributed: refused requests carry their path. */
  proxy: Finding[];
  /** Every traced send with bytes. */
  sends: TracedSend[];
  /** Bytes of send buffers the trace parser did not keep (past its cap). */
  sendBytesDropped: number;
}

interface Who {
  package: string | null;
  pid: unknown;
  argv: unknown;
  /** Where the bytes went, as the event says. */
  to: string | null;
}

export function exfilFindings(input: ExfilInput): Finding[] {
  if (input.canaries.length === 0) return [];
  const match = canaryMatcher(input.canaries);
  const found = new Map<string, Finding>();
  /** Secret and package pairs the monitor or the proxy showed: the tracer's copy adds nothing. */
  const shown = new Set<string>();
  const blind = new Map<string, Finding>();
  let searched = 0;

  const unsearchable = (key: string, make: () => Finding) => {
    const existing = blind.get(key);
    if (existing) existing.evidence.count = Number(existing.evidence.count ?? 1) + 1;
    else blind.set(key, make());
  };

  /** The hits in `data`, within the run's search bound. */
  const search = (data: string | Uint8Array): CanaryHit[] => {
    if (searched + data.length > SEARCHED_BYTES_PER_RUN) {
      unsearchable('bound', () =>
        finding(
          'monitor.tampered',
          'critical',
          `more was sent than the canary search covers (${SEARCHED_BYTES_PER_RUN / 1024 ** 2} MiB per run); a secret in the rest cannot be ruled out`,
          { searchedBytes: searched, limitBytes: SEARCHED_BYTES_PER_RUN },
        ),
      );
      return [];
    }
    searched += data.length;
    return match(data);
  };

  const report = (hit: CanaryHit, channel: string, who: Who) => {
    const key = `${hit.canary.name}|${channel}|${who.package}`;
    const existing = found.get(key);
    if (existing) {
      existing.evidence.count = Number(existing.evidence.count ?? 1) + 1;
      return;
    }
    const partial = hit.chars < hit.of;
    const how = [hit.encoding === 'plain' ? '' : `${hit.encoding}-encoded`, partial ? `${hit.chars} of its ${hit.of} characters` : '']
      .filter(Boolean)
      .join(', ');
    found.set(
      key,
      finding(
        'network.canary-exfil',
        'critical',
        `the canary secret ${hit.canary.name} left in a ${channel}${how ? ` (${how})` : ''}`,
        // The terminal summary shows the first six fields: what, where, how, the excerpt and who.
        {
          secret: hit.canary.name,
          channel,
          encoding: hit.encoding,
          seen: hit.excerpt,
          pid: who.pid ?? null,
          argv: who.argv ?? null,
          partial,
          chars: hit.chars,
          of: hit.of,
          offset: hit.offset,
          ...(hit.view === 'as sent' ? {} : { view: hit.view }),
          to: who.to,
        },
        who.package,
      ),
    );
  };

  for (const event of input.network) {
    if (event.source !== 'monitor') continue;
    const who: Who = { package: str(event.package), pid: event.pid, argv: event.argv, to: str(event.resolvedHost) ?? str(event.dst) };
    if (event.cut === true) {
      unsearchable(`cut|${event.type}|${who.package}`, () =>
        finding(
          'monitor.tampered',
          'critical',
          `the monitor did not keep all of a ${String(event.type)} capture (${String(event.bytes)} bytes arrived); a secret in the rest cannot be ruled out`,
          { event: str(event.type), dst: str(event.dst), bytes: event.bytes ?? null, pid: who.pid ?? null, argv: who.argv ?? null },
          who.package,
        ),
      );
    }
    const inEvent = new Set<string>();
    for (const { channel, data } of carried(event)) {
      for (const hit of search(data)) {
        if (inEvent.has(hit.canary.name)) continue;
        inEvent.add(hit.canary.name);
        shown.add(`${hit.canary.name}|${who.package}`);
        report(hit, channel, who);
      }
    }
  }
  for (const f of input.proxy) {
    const path = str(f.evidence.path);
    if (f.rule !== 'integrity.unlocked-request' || path === null) continue;
    for (const hit of search(path)) {
      shown.add(`${hit.canary.name}|${f.package}`);
      report(hit, 'proxy request path', { package: f.package, pid: f.evidence.pid, argv: null, to: 'index proxy' });
    }
  }
  for (const send of input.sends) {
    for (const hit of search(send.payload)) {
      if (shown.has(`${hit.canary.name}|${send.package}`)) continue;
      report(hit, `${send.syscall} payload`, { package: send.package, pid: send.pid, argv: send.argv, to: send.to });
    }
  }
  if (input.sendBytesDropped > 0) {
    unsearchable('sends', () =>
      finding(
        'monitor.tampered',
        'critical',
        `the trace held more sent bytes than are searched for canaries (${input.sendBytesDropped} bytes past the cap); a secret in them cannot be ruled out`,
        { sendBytesDropped: input.sendBytesDropped },
      ),
    );
  }
  return [...found.values(), ...blind.values()];
}
