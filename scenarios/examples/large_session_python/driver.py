"""The load for large_session_python/server.py: concurrent clients GET /events and check every response against
the log byte for byte, then ask the server to shut down. Prints its figures as one JSON object on stdout.

Run by memproof beside the server, in the same work directory, outside the measurement; the params come in
MEMPROOF_PARAMS. A request that fails (the server was killed) is counted, not raised: the server's outcome, which
memproof takes from the kernel, says what happened.
"""

import hashlib
import http.client
import json
import os
import sys
import threading
import time


def wait_for_port(timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open("port", encoding="utf-8") as port:
                return int(port.read())
        except (FileNotFoundError, ValueError):
            time.sleep(0.02)
    return None


def digest_of_log():
    digest = hashlib.sha256()
    size = 0
    with open("events.jsonl", "rb") as log:
        for chunk in iter(lambda: log.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def main():
    params = json.loads(os.environ["MEMPROOF_PARAMS"])
    port = wait_for_port()
    figures = {"responses_verified": 0, "responses_short": 0, "requests_failed": 0}
    if port is None:
        print(json.dumps(figures))
        sys.exit("driver.py: the server never wrote its port")
    expected_digest, expected_size = digest_of_log()
    lock = threading.Lock()

    def client():
        for _ in range(int(params["requests_per_client"])):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
                connection.request("GET", "/events")
                response = connection.getresponse()
                digest = hashlib.sha256()
                size = 0
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    digest.update(chunk)
                    size += len(chunk)
                connection.close()
                key = "responses_verified" if (size, digest.hexdigest()) == (expected_size, expected_digest) else "responses_short"
            except (OSError, http.client.HTTPException):
                key = "requests_failed"
            with lock:
                figures[key] += 1

    clients = [threading.Thread(target=client) for _ in range(int(params["clients"]))]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", "/shutdown")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        pass  # already gone
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
