"""Monitor services for one sandbox run. Runs as `simonitor` in the monitor container, which owns
the network namespace (network none) that the sandbox container joins.

- relay:   127.0.0.1:<relay-port> -> the index proxy's unix socket (only this container mounts it)
- dns:     a sinkhole on 127.0.0.53:53/udp; every name gets its own 127.x.y.z address; each query logged
- fake services on the common ports of 0.0.0.0 (so every sinkholed address): HTTP (a 404 once the
           request and its body are in), TLS (the ClientHello's SNI), anything else read to its end;
           then close. UDP on the same ports (and NTP, syslog, SNMP): every datagram

Everything a sandbox process sends to a fake service or the sinkhole is kept, up to the caps below,
base64 in the event's `payload`, for the host to search for its canaries (observe/exfil.ts): `bytes`
says how much arrived, `cut` that some of it was not kept (the host fails the run then: it cannot
vouch that what it did not keep held no secret).

Every event is one JSON object per line on stdout. Run with `python3 -I -S`; stdlib only.
"""

import argparse
import base64
import json
import re
import selectors
import socket
import struct
import sys
import threading
import time

WRITE_LOCK = threading.Lock()
MAX_EVENTS = 20000
_events = 0


def emit(event):
    global _events
    with WRITE_LOCK:
        _events += 1
        if _events > MAX_EVENTS:
            if _events == MAX_EVENTS + 1:
                event = {"type": "truncated", "limit": MAX_EVENTS}
            else:
                return
        event.setdefault("time", time.time())
        sys.stdout.write(json.dumps(event, ensure_ascii=True) + "\n")
        sys.stdout.flush()


def text(data, limit=512):
    """Bytes from a hostile peer, as a bounded printable string (JSON escapes the rest)."""
    return bytes(data[:limit]).decode("latin-1")


# What is kept of what reaches the fake services (core/outcome.ts MONITOR_CAPTURE holds the same
# numbers; outcome.test.ts checks they agree).
# One TCP connection: 1 MiB. A secret is tens of bytes and a planted file a few hundred; a package
# that sends more than this to a fake service is hiding something in bulk. Past it the connection
# is closed and the event marked `cut`.
STREAM_CAP = 1 << 20
# One datagram: whole. Over IPv4 a datagram holds at most 65,507 bytes.
DATAGRAM_CAP = 65535
# The whole run, every connection and datagram together: 32 MiB, 43 MiB of base64 on stdout. This
# bounds what the host holds and searches (core/canary.ts SEARCHED_BYTES_PER_RUN counts it). Past
# it events still come, with `cut` and without the bytes.
RUN_CAP = 32 << 20
# A connection that stays quiet this long is done; one still sending after STREAM_SECONDS is cut.
IDLE_SECONDS = 3
STREAM_SECONDS = 30


class Budget:
    """RUN_CAP, shared by every listener's threads."""

    def __init__(self, total):
        self.left = total
        self.lock = threading.Lock()

    def take(self, wanted):
        with self.lock:
            granted = min(wanted, self.left)
            self.left -= granted
            return granted


BUDGET = Budget(RUN_CAP)


def captured(data, cap):
    """The event fields for bytes that arrived: how many, what is kept (base64), whether any was not."""
    kept = BUDGET.take(min(len(data), cap))
    return {"bytes": len(data), "payload": base64.b64encode(bytes(data[:kept])).decode("ascii"), "cut": kept < len(data)}


# ---------------------------------------------------------------- relay


def pump(src, dst):
    try:
        while True:
            chunk = src.recv(65536)
            if not chunk:
                break
            dst.sendall(chunk)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def tcp_server(host, port, on_connection):
    """Listen on host:port and hand each accepted connection to on_connection in a thread."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen(64)

    def guarded(conn, peer):
        try:
            on_connection(conn, peer)
        except Exception as error:  # a hostile peer must not take a listener down with it
            emit({"type": "monitor-error", "port": port, "error": repr(error)[:200]})
            conn.close()

    def serve():
        while True:
            try:
                conn, peer = server.accept()
                threading.Thread(target=guarded, args=(conn, peer), daemon=True).start()
            except Exception as error:
                emit({"type": "monitor-error", "port": port, "error": repr(error)[:200]})
                time.sleep(0.05)

    threading.Thread(target=serve, daemon=True).start()


def relay(port, proxy_socket):
    def forward(client, _peer):
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(proxy_socket)
        except OSError as error:
            emit({"type": "relay-error", "error": str(error)})
            client.close()
            upstream.close()
            return
        threading.Thread(target=pump, args=(upstream, client), daemon=True).start()
        pump(client, upstream)

    tcp_server("127.0.0.1", port, forward)


# ---------------------------------------------------------------- DNS sinkhole


class Sinkhole:
    """Gives each distinct name its own loopback address, so a later connect names its host."""

    def __init__(self):
        self.addresses = {}
        self.next = 1

    def address_for(self, name):
        key = name.lower().rstrip(".")
        if key not in self.addresses:
            while self.next % 256 in (0, 255):
                self.next += 1
            n = self.next
            self.next += 1
            self.addresses[key] = "127.%d.%d.%d" % (1 + (n >> 16) % 254, (n >> 8) & 255, n & 255)
            emit({"type": "dns-map", "name": key, "address": self.addresses[key]})
        return self.addresses[key]


def parse_question(packet):
    """(id, flags, qname, qtype, end offset of the question) or None for a malformed packet."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount < 1:
        return None
    labels, offset = [], 12
    while True:
        if offset >= len(packet):
            return None
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0 or offset + length > len(packet) or len(labels) > 127:
            return None
        labels.append(packet[offset:offset + length])
        offset += length
    if offset + 4 > len(packet):
        return None
    qtype, _qclass = struct.unpack("!HH", packet[offset:offset + 4])
    name = ".".join(presentation(label) for label in labels)
    return ident, flags, name, qtype, offset + 4


def presentation(label):
    """A label in DNS presentation format (RFC 1035 5.1): a dot or backslash inside a label is
    escaped with a backslash and any byte outside printable ASCII is \\DDD, so `a.b` as one label
    never reads like two labels, and no terminal control byte survives."""
    out = []
    for byte in label:
        if byte in (0x2E, 0x5C):
            out.append("\\" + chr(byte))
        elif 0x21 <= byte <= 0x7E:
            out.append(chr(byte))
        else:
            out.append("\\%03d" % byte)
    return "".join(out)


def answer(packet, question, address):
    ident, flags, _name, qtype, end = question
    response_flags = 0x8000 | (flags & 0x0100) | 0x0080 | 0x0400  # QR, RD copied, RA, AA
    answers = b""
    count = 0
    if qtype == 1 and address:  # A
        answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(address)
        count = 1
    header = struct.pack("!HHHHHH", ident, response_flags, 1, count, 0, 0)
    return header + packet[12:end] + answers


def dns(host, port, sinkhole):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # beside the 0.0.0.0:53 listener
    sock.bind((host, port))

    def serve():
        while True:
            packet, peer = sock.recvfrom(65536)
            question = parse_question(packet)
            if question is None:
                emit({"type": "dns-malformed", "src": "%s:%d" % peer, **captured(packet, DATAGRAM_CAP)})
                continue
            name, qtype = question[2], question[3]
            address = sinkhole.address_for(name) if qtype == 1 else None
            # The whole packet too: a query can carry more than its name (further questions,
            # additional records, EDNS options).
            emit({"type": "dns", "name": name, "qtype": qtype, "answer": address, "src": "%s:%d" % peer,
                  **captured(packet, DATAGRAM_CAP)})
            try:
                sock.sendto(answer(packet, question, address), peer)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()


# ---------------------------------------------------------------- fake services


def parse_sni(data):
    """SNI host name from a TLS ClientHello, or None."""
    try:
        if data[0] != 0x16 or data[5] != 0x01:
            return None
        offset = 5 + 4 + 2 + 32  # record header, handshake header, version, random
        offset += 1 + data[offset]  # session id
        offset += 2 + struct.unpack("!H", data[offset:offset + 2])[0]  # cipher suites
        offset += 1 + data[offset]  # compression methods
        end = offset + 2 + struct.unpack("!H", data[offset:offset + 2])[0]
        offset += 2
        while offset + 4 <= end:
            kind, length = struct.unpack("!HH", data[offset:offset + 4])
            offset += 4
            if kind == 0:  # server_name
                name_length = min(struct.unpack("!H", data[offset + 3:offset + 5])[0], 255)
                return bytes(data[offset + 5:offset + 5 + name_length]).decode("latin-1")
            offset += length
    except (IndexError, struct.error):
        return None
    return None


# An HTTP request's head must end within this many bytes to be answered.
HEAD_CAP = 65536
# Where a head ends: a blank line, with CRLF or (as servers accept too) bare LF line ends.
HEAD_END = re.compile(rb"\r?\n\r?\n")


def head_lines(head):
    """An HTTP head's lines, CRLF or bare LF."""
    return [line[:-1] if line.endswith(b"\r") else line for line in bytes(head).split(b"\n")]


class HttpRequest:
    """Whether an HTTP request's head and its body (Content-Length, or chunked to its last chunk)
    are in. Fed the growing buffer; looks at each byte of the head about once, so a peer sending
    one byte at a time costs no more than one sending everything at once."""

    def __init__(self):
        self.searched = 0
        self.head_end = None
        self.length = 0
        self.chunked = False

    def done(self, data):
        if self.head_end is None:
            if self.searched >= HEAD_CAP:
                return False
            end = HEAD_END.search(data, max(0, self.searched - 3), HEAD_CAP)
            if end is None:
                self.searched = min(len(data), HEAD_CAP)
                return False
            self.head_end = end.end()
            lines = head_lines(data[:end.start()])
            if b" " not in lines[0]:
                self.searched = HEAD_CAP  # not HTTP: never answered
                self.head_end = None
                return False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name, value = name.strip().lower(), value.strip()
                if name == b"transfer-encoding" and b"chunked" in value.lower():
                    self.chunked = True
                elif name == b"content-length" and value.isdigit():
                    self.length = int(value[:12])
        if self.chunked:
            return data.endswith(b"0\r\n\r\n") or data.endswith(b"0\n\n")
        return len(data) >= self.head_end + self.length


def handle(conn, peer, port):
    """Read what the peer sends, to its end or the caps; answer an HTTP request with a 404 once it is
    in (the client then closes). A TLS client waits for a ServerHello that never comes: its
    ClientHello is all there is."""
    conn.settimeout(IDLE_SECONDS)
    local = conn.getsockname()
    data = bytearray()
    over = False
    request = HttpRequest()
    answered = False
    deadline = time.monotonic() + STREAM_SECONDS
    try:
        while True:
            if time.monotonic() > deadline:
                over = True
                break
            chunk = conn.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > STREAM_CAP:
                over = True
                break
            if data[:1] == b"\x16":
                if len(data) >= 5 and len(data) >= 5 + struct.unpack("!H", data[3:5])[0]:
                    break
            elif not answered and request.done(data):
                answered = True
                try:
                    conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass
    except OSError:
        pass
    event = {"dst": "%s:%d" % (local[0], local[1]), "src": "%s:%d" % (peer[0], peer[1]), "port": port}
    event.update(captured(data, STREAM_CAP))
    if over:
        event["cut"] = True
    if data[:1] == b"\x16":
        event.update({"type": "tls", "sni": parse_sni(data)})
    elif data and b" " in head_lines(data[:HEAD_CAP].split(b"\n", 1)[0])[0]:
        end = HEAD_END.search(data, 0, HEAD_CAP)
        head = head_lines(data[:end.start() if end else HEAD_CAP])
        parts = head[0].split(b" ")
        host = None
        for line in head[1:]:
            if line.lower().startswith(b"host:"):
                host = text(line[5:].strip(), 255)
        event.update({
            "type": "http",
            "method": text(parts[0], 16),
            "path": text(parts[1] if len(parts) > 1 else b"", 2048),
            "host": host,
        })
    else:
        event.update({"type": "tcp", "firstBytes": text(data, 256)})
    emit(event)
    conn.close()


def listener(port):
    tcp_server("0.0.0.0", port, lambda conn, peer: handle(conn, peer, port))


IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)


def udp_listener(port):
    """Every datagram to any sinkholed address on this port: the tracer may not see its sender
    (io_uring, a sendmmsg it could not read), so the monitor records it on its own."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    sock.bind(("0.0.0.0", port))

    def serve():
        while True:
            try:
                data, ancillary, _flags, peer = sock.recvmsg(65536, socket.CMSG_SPACE(12))
                dst = None
                for level, kind, value in ancillary:
                    if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(value) >= 12:
                        dst = socket.inet_ntoa(value[8:12])  # in_pktinfo.ipi_addr
                emit({"type": "udp", "dst": "%s:%d" % (dst or "0.0.0.0", port), "src": "%s:%d" % peer,
                      "port": port, "firstBytes": text(data, 128), **captured(data, DATAGRAM_CAP)})
            except Exception as error:
                emit({"type": "monitor-error", "port": port, "error": repr(error)[:200]})
                time.sleep(0.05)

    threading.Thread(target=serve, daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--relay-port", type=int, required=True)
    parser.add_argument("--proxy-socket", required=True)
    parser.add_argument("--dns", default="127.0.0.53")
    parser.add_argument("--ports", default="80,443,8080,8443,8000,8888,4444,1337,21,22,25,3306,5432,6379")
    args = parser.parse_args()

    relay(args.relay_port, args.proxy_socket)
    dns(args.dns, 53, Sinkhole())
    ports = [int(p) for p in args.ports.split(",") if p and int(p) != args.relay_port]
    for port in ports:
        listener(port)
    # UDP: the same ports, plus the usual datagram services. 53 on 0.0.0.0 sits beside the sinkhole
    # on 127.0.0.53:53 (the more specific bind gets its queries): a query sent to any other
    # address is still seen.
    for port in sorted(set(ports) | {53, 123, 161, 514}):
        udp_listener(port)
    emit({"type": "ready", "relayPort": args.relay_port, "dns": args.dns, "ports": ports})
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
