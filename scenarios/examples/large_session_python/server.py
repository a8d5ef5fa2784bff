"""Seed C in Python, standard library only: an HTTP server that serves a session's JSONL event log.

`server.py TECHNIQUE`, run by memproof as a technique of scenarios/examples/large-session-python.toml. The size
(the log's bytes) and the params come in the environment (MEMPROOF_SIZE, MEMPROOF_PARAMS); the work directory is
the current directory. It writes the log (events.jsonl), listens on a free loopback port, writes the port to the
file `port` for the driver, and serves until the driver asks for /shutdown.

- read_whole_file (the seed's bug): each GET reads the whole file, parses every line into an event and serialises
  the events back into the response body, so every request in flight holds the log several times over.
- scan_lines_collect (the merged fix): reads the file a line at a time, but still collects every parsed event
  before it answers, so a request still holds the whole log's events.
- stream_to_body (the fix, done fully): each GET copies the file to the response a line at a time.

The heap figures are tracemalloc's, through memproof's Python probe client.
"""

import http.server
import json
import os
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "clients", "python"))
import memproof_probe as probe  # noqa: E402

LOG = "events.jsonl"


def write_log(size, event_bytes):
    """Writes events of about event_bytes each until the log holds size bytes; returns the event count."""
    written = 0
    count = 0
    with open(LOG, "w", encoding="utf-8") as log:
        while written < size:
            event = {"seq": count, "type": "TEXT_MESSAGE_CONTENT", "delta": ""}
            room = min(event_bytes, size - written) - len(json.dumps(event, separators=(",", ":"))) - 1
            event["delta"] = "x" * max(room, 0)
            line = json.dumps(event, separators=(",", ":")) + "\n"
            log.write(line)
            written += len(line)
            count += 1
    return count


def read_whole_file():
    with open(LOG, "rb") as log:
        data = log.read()
    events = [json.loads(line) for line in data.splitlines()]
    return b"".join((json.dumps(event, separators=(",", ":")) + "\n").encode() for event in events)


def scan_lines_collect():
    events = []
    with open(LOG, "rb") as log:
        for line in log:
            events.append(json.loads(line))
    return b"".join((json.dumps(event, separators=(",", ":")) + "\n").encode() for event in events)


COLLECTING = {"read_whole_file": read_whole_file, "scan_lines_collect": scan_lines_collect}


class Handler(http.server.BaseHTTPRequestHandler):
    technique = None
    served = 0
    lock = threading.Lock()

    def do_GET(self):
        if self.path == "/shutdown":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            threading.Thread(target=self.server.shutdown).start()
            return
        if self.path != "/events":
            self.send_error(404)
            return
        if Handler.technique in COLLECTING:
            body = COLLECTING[Handler.technique]()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(os.path.getsize(LOG)))
            self.end_headers()
            with open(LOG, "rb") as log:
                for line in log:
                    self.wfile.write(line)
        with Handler.lock:
            Handler.served += 1

    def log_message(self, *args):
        pass  # stdout and stderr stay quiet


def main():
    probe.start()
    technique = sys.argv[1]
    if technique not in ("read_whole_file", "scan_lines_collect", "stream_to_body"):
        sys.exit(
            f"server.py: unknown technique {technique!r}: expected read_whole_file, scan_lines_collect or stream_to_body"
        )
    Handler.technique = technique
    size = int(os.environ["MEMPROOF_SIZE"])
    params = json.loads(os.environ["MEMPROOF_PARAMS"])
    probe.phase("write log")
    events = write_log(size, int(params["event_bytes"]))
    probe.metric("events", events)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open("port.tmp", "w", encoding="utf-8") as port:
        port.write(str(server.server_address[1]))
    os.rename("port.tmp", "port")
    probe.phase("serve")
    server.serve_forever(poll_interval=0.05)
    server.server_close()
    probe.metric("responses_served", Handler.served)
    probe.finish()


if __name__ == "__main__":
    main()
