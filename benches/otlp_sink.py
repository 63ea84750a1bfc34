#!/usr/bin/env python3
"""A local OTLP/gRPC trace receiver for benches/run.sh: accepts and counts, keeps nothing.

  otlp_sink.py --port PORT --stats FILE

Serves opentelemetry.proto.collector.trace.v1.TraceService/Export on 127.0.0.1:PORT with a
generic grpcio handler (raw bytes in and out, no generated code) and answers every Export with an
empty ExportTraceServiceResponse (zero bytes). It counts the Export calls, the request bytes and
the spans in them, and rewrites FILE (JSON) after every call and once more on SIGTERM/SIGINT:

  {"exports", "bytes", "spans", "span_names": {name: count}, "cpu_s"}

cpu_s is this process's own CPU time (the receiver's cost, not the server's). Span counting walks
ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; } ->
ResourceSpans { repeated ScopeSpans scope_spans = 2; } -> ScopeSpans { repeated Span spans = 2; } ->
Span { string name = 5; } (opentelemetry/proto/trace/v1/trace.proto).
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from concurrent import futures

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def fields(buf):
    """Yields (field, wire_type, value) of one message; value is bytes for length-delimited fields."""
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        field, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 1:
            v, i = None, i + 8
        elif wt == 2:
            n, i = read_varint(buf, i)
            v, i = buf[i : i + n], i + n
        elif wt == 5:
            v, i = None, i + 4
        else:
            raise ValueError(f"unexpected wire type {wt}")
        yield field, wt, v


def span_names(request):
    for f, wt, rs in fields(request):
        if f != 1 or wt != 2:
            continue
        for f2, wt2, ss in fields(rs):
            if f2 != 2 or wt2 != 2:
                continue
            for f3, wt3, span in fields(ss):
                if f3 != 2 or wt3 != 2:
                    continue
                yield next((bytes(v).decode(errors="replace") for f4, wt4, v in fields(span) if f4 == 5 and wt4 == 2), "")


class Sink:
    def __init__(self, stats_path):
        self.stats_path = stats_path
        self.lock = threading.Lock()
        self.exports = self.bytes = self.spans = 0
        self.names = {}
        self.undecodable = 0

    def export(self, request, context):
        with self.lock:
            self.exports += 1
            self.bytes += len(request)
            try:
                for name in span_names(request):
                    self.spans += 1
                    self.names[name] = self.names.get(name, 0) + 1
            except (ValueError, IndexError):
                self.undecodable += 1
            self.write()
        return b""  # ExportTraceServiceResponse {} (no partial_success)

    def write(self):
        t = time.process_time()
        tmp = f"{self.stats_path}.tmp"
        with open(tmp, "w") as f:
            json.dump({"exports": self.exports, "bytes": self.bytes, "spans": self.spans,
                       "span_names": self.names, "undecodable": self.undecodable, "cpu_s": round(t, 3)}, f)
        os.replace(tmp, self.stats_path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stats", required=True)
    args = ap.parse_args()
    import grpc

    sink = Sink(args.stats)
    sink.write()
    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "Export": grpc.unary_unary_rpc_method_handler(sink.export, request_deserializer=None, response_serializer=None),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), handlers=(handler,),
                         options=(("grpc.max_receive_message_length", 64 << 20),))
    if server.add_insecure_port(f"127.0.0.1:{args.port}") == 0:
        raise SystemExit(f"otlp_sink: cannot bind 127.0.0.1:{args.port}")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    print(f"otlp_sink: listening on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
    while not stop.wait(1):
        pass
    server.stop(1).wait()
    with sink.lock:
        sink.write()
    print(f"otlp_sink: {sink.exports} exports, {sink.spans} spans, {sink.bytes} bytes", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
