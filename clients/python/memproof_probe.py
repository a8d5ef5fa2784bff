"""memproof's probe client for Python: heap samples, phases and metrics on memproof's probe protocol (version 1).

Copy this one file next to your program (standard library only) and call:

    import memproof_probe
    memproof_probe.start()            # first thing: starts tracemalloc and the sampler thread
    memproof_probe.phase("load")      # a phase lasts until the next one
    memproof_probe.metric("rows", 12000)
    memproof_probe.finish()           # last thing: the final heap figures

Run it under `cargo xtask measure --probe -- python3 app.py`. The heap is what tracemalloc traces: the bytes
Python's allocators hand out after start(), as asked for (memory a C extension takes with plain malloc is not in
it; `measure --heap preload` sees that). The channel is the file descriptor named by MEMPROOF_PROBE_FD; without it
every call does nothing, so the calls can stay in production code.
"""

import atexit
import json
import os
import threading
import time
import tracemalloc

PROTOCOL_VERSION = 1
PROBE_FD_ENV = "MEMPROOF_PROBE_FD"
SAMPLE_MS_ENV = "MEMPROOF_SAMPLE_MS"
DEFAULT_SAMPLE_MS = 10

_fd = None
_lock = threading.Lock()
_stop = threading.Event()
_sampler = None
_peak = 0


def _channel():
    # Taken out of the environment: a program this one starts does not speak for it.
    text = os.environ.pop(PROBE_FD_ENV, "")
    if not text.isdigit():
        return None
    fd = int(text)
    try:
        os.set_inheritable(fd, False)  # programs this one starts do not speak for it
    except OSError:
        return None
    return fd


def _send(message):
    if _fd is None:
        return
    data = (json.dumps(message, separators=(",", ":")) + "\n").encode()
    with _lock:
        try:
            while data:
                data = data[os.write(_fd, data):]
        except OSError:
            pass  # memproof is gone; nobody is listening


def _sample():
    """Sends the highest traced figure since the previous sample, and starts a new window."""
    global _peak
    with _lock:
        _, window_peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        _peak = max(_peak, window_peak)
    _send({"type": "heap", "mono_ns": time.monotonic_ns(), "heap_bytes": window_peak})


def _sample_until_stopped(interval):
    while not _stop.wait(interval):
        _sample()


def start():
    """Connects to memproof's channel, starts tracing the heap and samples it on a background thread."""
    global _fd, _sampler
    if _fd is not None:
        return
    _fd = _channel()
    if _fd is None:
        return
    text = os.environ.get(SAMPLE_MS_ENV, "")
    interval = max(int(text), 1) / 1000 if text.isdigit() else DEFAULT_SAMPLE_MS / 1000
    tracemalloc.start()
    _send({"type": "hello", "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "meter": "tracemalloc"})
    _sampler = threading.Thread(target=_sample_until_stopped, args=(interval,), name="memproof-sampler", daemon=True)
    _sampler.start()
    atexit.register(finish)


def phase(name):
    """Marks the start of a phase; the heap sample sent first closes the previous phase's window."""
    if _fd is None:
        return
    _sample()
    _send({"type": "phase", "name": str(name), "mono_ns": time.monotonic_ns()})


def metric(name, value):
    """Reports one of the program's own figures (any JSON value); a later report of the same name replaces it."""
    _send({"type": "metric", "name": str(name), "value": value})


def finish():
    """Stops the sampler and sends the final heap figures. Later calls do nothing."""
    global _fd, _sampler
    if _fd is None or _sampler is None:
        return
    _stop.set()
    _sampler.join()
    _sampler = None
    _sample()
    current, _ = tracemalloc.get_traced_memory()
    _send({"type": "heap", "mono_ns": time.monotonic_ns(), "heap_bytes": current})
    _send({
        "type": "final",
        "peak_heap_bytes": _peak,
        "end_heap_bytes": current,
        "mono_ns": time.monotonic_ns(),
    })
    tracemalloc.stop()
    _fd = None
