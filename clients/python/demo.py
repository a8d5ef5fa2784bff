"""A program with a known heap, for memproof_probe's test and README: holds one bytearray of SIZE bytes (argv[1])."""

import sys

import memproof_probe

memproof_probe.start()
size = int(sys.argv[1])
memproof_probe.phase("allocate")
held = bytearray(size)
memproof_probe.phase("hold")
memproof_probe.metric("held_bytes", len(held))
del held
memproof_probe.phase("release")
memproof_probe.finish()
