#!/usr/bin/python3
"""h2_hostile.py: an HTTP/2 client over TLS that runs one named scenario, well-behaved or
hostile, against host:port and prints one JSON line of what the server did.

Run it with Debian's /usr/bin/python3 (python3-h2, python3-hpack, python3-hyperframe); the
python3 of a pyenv on PATH may lack h2. Well-formed traffic goes through h2's state machine;
frames h2 refuses to send (malformed fields, CONTINUATION and empty-frame floods) are built
with hyperframe and hpack. Every byte the server sends is parsed into frames for the report.

    h2_hostile.py HOST PORT SCENARIO [ARG] [--sni NAME] [--no-alpn] [--timeout S]
                  [--handshake-pause S]

--handshake-pause S sends the first 5 bytes of the ClientHello (a record header: the server
accepts the connection and starts its handshake), waits S seconds, then sends the rest: a
handshake that is in flight while the test does something to the server.

Scenarios: ok-get, rapid-reset, continuation-flood, settings-flood, ping-flood,
empty-data-flood, bad-header KIND (see BAD_HEADERS), never-open-window,
prior-knowledge-without-alpn, trailers, stalled-body, many-streams N, big-head BYTES.

The JSON line: scenario, alpn (negotiated), status (the first response :status), rst
({stream: code name}), goaway (code name or null), goaway_last_stream, closed (the server
closed the connection), bytes_received, data_bytes, data (the first 64 KiB of DATA payloads,
latin-1), blocks (the first 16 header blocks received, each a list of [name, value]), frames
({type: count}), seconds, error.
Exit status 0 when the scenario ran (whatever the server did), 2 on bad usage or when the
connection could not be made.
"""

import argparse
import json
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.settings
import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

ERROR_NAMES = {
    0x0: "NO_ERROR", 0x1: "PROTOCOL_ERROR", 0x2: "INTERNAL_ERROR", 0x3: "FLOW_CONTROL_ERROR",
    0x4: "SETTINGS_TIMEOUT", 0x5: "STREAM_CLOSED", 0x6: "FRAME_SIZE_ERROR",
    0x7: "REFUSED_STREAM", 0x8: "CANCEL", 0x9: "COMPRESSION_ERROR", 0xa: "CONNECT_ERROR",
    0xb: "ENHANCE_YOUR_CALM", 0xc: "INADEQUATE_SECURITY", 0xd: "HTTP_1_1_REQUIRED",
}


def code_name(code):
    return ERROR_NAMES.get(code, hex(code))


def base_headers(authority, path="/"):
    return [(":method", "GET"), (":scheme", "https"), (":authority", authority), (":path", path)]


# bad-header KIND → the request's fields (each malformed per RFC 9113 §8.2-8.3).
def bad_headers(kind, authority):
    g = base_headers(authority)
    table = {
        "connection": g + [("connection", "keep-alive")],
        "keep-alive": g + [("keep-alive", "timeout=5")],
        "proxy-connection": g + [("proxy-connection", "keep-alive")],
        "transfer-encoding": g + [("transfer-encoding", "chunked")],
        "upgrade": g + [("upgrade", "websocket")],
        "te": g + [("te", "gzip")],
        "uppercase": g + [("X-Upper", "1")],
        "cr": g + [("x-a", "a\rb")],
        "lf": g + [("x-a", "a\nb")],
        "nul": g + [("x-a", "a\x00b")],
        "leading-space": g + [("x-a", " a")],
        "trailing-space": g + [("x-a", "a ")],
        "pseudo-after-regular": g[:2] + [("x-a", "1")] + g[2:],
        "duplicate-pseudo": g + [(":path", "/again")],
        "unknown-pseudo": g + [(":foo", "1")],
        "missing-method": g[1:],
        "missing-path": g[:3],
        "conflicting-host": g + [("host", "other.invalid")],
        "content-length-mismatch": [(":method", "POST")] + g[1:] + [("content-length", "10")],
    }
    return table.get(kind)


BAD_HEADERS = [
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te",
    "uppercase", "cr", "lf", "nul", "leading-space", "trailing-space", "pseudo-after-regular",
    "duplicate-pseudo", "unknown-pseudo", "missing-method", "missing-path", "conflicting-host",
    "content-length-mismatch",
]


class Report:
    """Parses every byte the server sends into frames and sums up what it did."""

    def __init__(self, scenario):
        self.buf = b""
        self.decoder = hpack.Decoder()
        self.out = {"scenario": scenario, "alpn": None, "status": None, "rst": {},
                    "goaway": None, "goaway_last_stream": None, "closed": False,
                    "bytes_received": 0, "data_bytes": 0, "frames": {}, "seconds": 0.0,
                    "error": None, "blocks": [], "data": ""}
        self.header_block = b""
        self.ended = set()  # streams whose response carried END_STREAM

    def feed(self, data):
        self.out["bytes_received"] += len(data)
        self.buf += data
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            frame.parse_body(memoryview(self.buf[9:9 + length]))
            self.buf = self.buf[9 + length:]
            self.on_frame(frame)

    def on_frame(self, frame):
        kind = type(frame).__name__.replace("Frame", "").upper()
        self.out["frames"][kind] = self.out["frames"].get(kind, 0) + 1
        if "END_STREAM" in getattr(frame, "flags", ()):
            self.ended.add(frame.stream_id)
        if isinstance(frame, GoAwayFrame):
            self.out["goaway"] = code_name(frame.error_code)
            self.out["goaway_last_stream"] = frame.last_stream_id
        elif isinstance(frame, RstStreamFrame):
            self.out["rst"][str(frame.stream_id)] = code_name(frame.error_code)
        elif isinstance(frame, DataFrame):
            self.out["data_bytes"] += len(frame.data)
            if len(self.out["data"]) < 65536:
                self.out["data"] += bytes(frame.data).decode("latin-1")
        elif isinstance(frame, (HeadersFrame, ContinuationFrame)):
            self.header_block += frame.data
            if "END_HEADERS" in frame.flags:
                try:
                    block = []
                    for name, value in self.decoder.decode(self.header_block):
                        name = name.decode() if isinstance(name, bytes) else name
                        value = value.decode() if isinstance(value, bytes) else value
                        block.append([name, value])
                        if name == ":status" and self.out["status"] is None:
                            self.out["status"] = value
                    if len(self.out["blocks"]) < 16:
                        self.out["blocks"].append(block)
                except hpack.HPACKError as e:
                    self.out["error"] = "hpack: %s" % e
                self.header_block = b""


class PausedTLS:
    """A TLS client on a MemoryBIO pair over a plain socket, whose ClientHello goes out in two
    parts `pause` seconds apart; then the socket calls Session uses (sendall, recv, settimeout,
    close, selected_alpn_protocol)."""

    def __init__(self, raw, ctx, server_hostname, pause):
        self.raw = raw
        self.incoming = ssl.MemoryBIO()
        self.outgoing = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname=server_hostname)
        first = True
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                data = self.outgoing.read()
                if first and data:
                    first = False
                    raw.sendall(data[:5])
                    time.sleep(pause)
                    data = data[5:]
                if data:
                    raw.sendall(data)
                chunk = raw.recv(65536)
                if not chunk:
                    raise OSError("the server closed the connection during the handshake")
                self.incoming.write(chunk)

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self.raw.sendall(data)

    def sendall(self, data):
        self.tls.write(data)
        self._flush()

    def recv(self, n):
        while True:
            try:
                return self.tls.read(n)
            except ssl.SSLWantReadError:
                self._flush()
                chunk = self.raw.recv(65536)
                if not chunk:
                    return b""
                self.incoming.write(chunk)
            except ssl.SSLZeroReturnError:
                return b""

    def settimeout(self, seconds):
        self.raw.settimeout(seconds)

    def selected_alpn_protocol(self):
        return self.tls.selected_alpn_protocol()

    def close(self):
        self.raw.close()


class Session:
    def __init__(self, args):
        self.args = args
        self.report = Report(args.scenario + (" " + args.arg if args.arg else ""))
        self.start = time.monotonic()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if not args.no_alpn:
            ctx.set_alpn_protocols(["h2"])
        raw = socket.create_connection((args.host, args.port), timeout=args.timeout)
        if args.handshake_pause > 0:
            self.sock = PausedTLS(raw, ctx, args.sni or args.host, args.handshake_pause)
        else:
            self.sock = ctx.wrap_socket(raw, server_hostname=args.sni or args.host)
        self.report.out["alpn"] = self.sock.selected_alpn_protocol()
        self.conn = None  # an h2 connection when the scenario uses one
        self.encoder = hpack.Encoder()

    def use_h2(self, local_settings=None):
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        if local_settings:
            self.conn.local_settings = h2.settings.Settings(client=True,
                                                            initial_values=local_settings)
        self.conn.initiate_connection()
        self.flush()

    def flush(self):
        if self.conn is not None:
            data = self.conn.data_to_send()
            if data:
                self.send(data)

    def send(self, data):
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            self.report.out["closed"] = True
            return False

    def raw_start(self):
        self.send(PREFACE + SettingsFrame(0).serialize())

    def headers_frame(self, stream_id, fields, end_stream=True, end_headers=True):
        f = HeadersFrame(stream_id)
        f.data = self.encoder.encode(fields)
        f.flags = set()
        if end_headers:
            f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    def read_until(self, done, seconds):
        """Reads until done() or the server closes or `seconds` pass without an answer."""
        deadline = time.monotonic() + seconds
        while not done() and not self.report.out["closed"]:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            except (OSError, ssl.SSLError):
                self.report.out["closed"] = True
                break
            if not data:
                self.report.out["closed"] = True
                break
            self.report.feed(data)
            if self.conn is not None:
                try:
                    self.conn.receive_data(data)
                except Exception:  # h2 may object to what a hostile script provoked
                    pass
                self.flush()

    def goaway_seen(self):
        return self.report.out["goaway"] is not None

    def finish(self):
        self.report.out["seconds"] = round(time.monotonic() - self.start, 3)
        print(json.dumps(self.report.out, sort_keys=True))
        try:
            self.sock.close()
        except OSError:
            pass


def ok_get(s):
    s.use_h2()
    s.conn.send_headers(1, base_headers(s.args.sni or s.args.host, s.args.path),
                        end_stream=True)
    s.flush()
    s.read_until(lambda: "1" in s.report.out["rst"] or 1 in s.report.ended, s.args.timeout)


def rapid_reset(s):
    s.use_h2()
    sid = 1
    for _ in range(s.args.count):
        if s.report.out["closed"] or s.goaway_seen():
            break
        s.conn.send_headers(sid, base_headers(s.args.sni or s.args.host), end_stream=True)
        s.conn.reset_stream(sid)
        sid += 2
        if sid % 64 == 1:
            s.flush()
            s.read_until(lambda: True, 0.001)
    s.flush()
    s.read_until(s.goaway_seen, s.args.timeout)


def continuation_flood(s):
    s.raw_start()
    block = s.encoder.encode(base_headers(s.args.sni or s.args.host))
    f = HeadersFrame(1)
    f.data = block
    f.flags = {"END_STREAM"}
    s.send(f.serialize())
    for i in range(s.args.count):
        c = ContinuationFrame(1)
        c.data = s.encoder.encode([("x-flood-%d" % i, "v" * 64)])
        c.flags = set()
        if not s.send(c.serialize()):
            break
    s.read_until(s.goaway_seen, s.args.timeout)


def settings_flood(s):
    s.raw_start()
    flood = SettingsFrame(0).serialize() * s.args.count
    s.send(flood)
    s.read_until(s.goaway_seen, s.args.timeout)


def ping_flood(s):
    s.raw_start()
    flood = b"".join(PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize()
                     for i in range(s.args.count))
    s.send(flood)
    s.read_until(s.goaway_seen, s.args.timeout)


def empty_data_flood(s):
    s.raw_start()
    fields = [(":method", "POST")] + base_headers(s.args.sni or s.args.host)[1:]
    s.send(s.headers_frame(1, fields, end_stream=False))
    empty = DataFrame(1)
    empty.data = b""
    s.send(empty.serialize() * s.args.count)
    s.read_until(s.goaway_seen, s.args.timeout)


def bad_header(s):
    fields = bad_headers(s.args.arg, s.args.sni or s.args.host)
    if fields is None:
        raise SystemExit("bad-header KIND: one of " + ", ".join(BAD_HEADERS))
    s.raw_start()
    mismatch = s.args.arg == "content-length-mismatch"
    s.send(s.headers_frame(1, fields, end_stream=not mismatch))
    if mismatch:
        d = DataFrame(1)
        d.data = b"12345"
        d.flags = {"END_STREAM"}
        s.send(d.serialize())
    # A well-formed request after it shows the connection still serves.
    s.send(s.headers_frame(3, base_headers(s.args.sni or s.args.host)))
    s.read_until(lambda: "1" in s.report.out["rst"] and s.report.out["status"] is not None,
                 s.args.timeout)


def never_open_window(s):
    # Window 0 for every stream and no WINDOW_UPDATE ever: the server can send headers only.
    s.use_h2({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    s.conn.send_headers(1, base_headers(s.args.sni or s.args.host, s.args.path),
                        end_stream=True)
    s.flush()
    s.read_until(lambda: False, s.args.hold)


def trailers(s):
    # A POST whose body ends with trailers; the report's blocks hold the response's head and
    # its trailers (if any), data its body.
    s.use_h2()
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", s.args.sni or s.args.host),
              (":path", s.args.path), ("te", "trailers")]
    s.conn.send_headers(1, fields)
    s.conn.send_data(1, b"hello trailers")
    s.conn.send_headers(1, [("x-client-trailer", "abc"), ("x-forwarded-for", "6.6.6.6")],
                        end_stream=True)
    s.flush()
    s.read_until(lambda: "1" in s.report.out["rst"] or 1 in s.report.ended, s.args.timeout)


def stalled_body(s):
    # A POST whose body never comes: the server answers (408) or resets at its read timeout.
    s.use_h2()
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", s.args.sni or s.args.host),
              (":path", s.args.path)]
    s.conn.send_headers(1, fields)
    s.flush()
    s.read_until(lambda: "1" in s.report.out["rst"] or 1 in s.report.ended, s.args.timeout)


def many_streams(s):
    # ARG streams opened at once, without waiting for the server's SETTINGS (so whatever
    # max_concurrent_streams it advertises is exceeded when ARG is larger); the report counts
    # the responses that ended ("ended") next to the resets.
    n = int(s.args.arg or "2")
    s.raw_start()
    for i in range(n):
        s.send(s.headers_frame(1 + 2 * i, base_headers(s.args.sni or s.args.host, s.args.path)))
    s.read_until(lambda: len(s.report.ended) + len(s.report.out["rst"]) >= n or s.goaway_seen(),
                 s.args.timeout)
    s.report.out["ended"] = len(s.report.ended)


def big_head(s):
    # One request whose header list is about ARG bytes (many 1 KiB fields).
    size = int(s.args.arg or "100000")
    s.raw_start()
    fields = base_headers(s.args.sni or s.args.host, s.args.path)
    fields += [("x-big-%d" % i, "v" * 1000) for i in range(size // 1040 + 1)]
    block = s.encoder.encode(fields)
    pieces = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    for i, piece in enumerate(pieces):
        f = HeadersFrame(1) if i == 0 else ContinuationFrame(1)
        f.data = piece
        f.flags = {"END_STREAM"} if i == 0 else set()
        if i == len(pieces) - 1:
            f.flags.add("END_HEADERS")
        s.send(f.serialize())
    s.send(s.headers_frame(3, base_headers(s.args.sni or s.args.host)))
    s.read_until(lambda: 3 in s.report.ended or s.goaway_seen(), s.args.timeout)


def prior_knowledge_without_alpn(s):
    # The client speaks h2 at once although TLS negotiated no protocol (run with --no-alpn).
    s.use_h2()
    s.conn.send_headers(1, base_headers(s.args.sni or s.args.host), end_stream=True)
    s.flush()
    s.read_until(lambda: s.report.out["status"] is not None or s.goaway_seen(),
                 s.args.timeout)
    if s.report.buf.startswith(b"HTTP/1."):
        s.report.out["http1_status_line"] = s.report.buf.split(b"\r\n", 1)[0].decode("latin-1")


SCENARIOS = {
    "ok-get": ok_get,
    "rapid-reset": rapid_reset,
    "continuation-flood": continuation_flood,
    "settings-flood": settings_flood,
    "ping-flood": ping_flood,
    "empty-data-flood": empty_data_flood,
    "bad-header": bad_header,
    "never-open-window": never_open_window,
    "prior-knowledge-without-alpn": prior_knowledge_without_alpn,
    "trailers": trailers,
    "stalled-body": stalled_body,
    "many-streams": many_streams,
    "big-head": big_head,
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("scenario", choices=sorted(SCENARIOS))
    p.add_argument("arg", nargs="?", default="",
                   help="bad-header KIND, many-streams COUNT, big-head BYTES")
    p.add_argument("--sni", default="", help="TLS server name and :authority")
    p.add_argument("--no-alpn", action="store_true", help="offer no ALPN protocol")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    p.add_argument("--hold", type=float, default=5.0,
                   help="never-open-window: seconds to keep reading")
    p.add_argument("--count", type=int, default=2000, help="frames or streams of a flood")
    p.add_argument("--path", default="/")
    p.add_argument("--handshake-pause", type=float, default=0.0,
                   help="seconds between the ClientHello's first 5 bytes and the rest")
    args = p.parse_args()
    if args.scenario == "bad-header" and not args.arg:
        p.error("bad-header needs KIND: " + ", ".join(BAD_HEADERS))
    try:
        s = Session(args)
    except (OSError, ssl.SSLError) as e:
        print(json.dumps({"scenario": args.scenario, "error": "connect: %s" % e}))
        return 2
    try:
        SCENARIOS[args.scenario](s)
    except (OSError, ssl.SSLError) as e:
        s.report.out["closed"] = True
        s.report.out["error"] = str(e)
    s.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
