// memproof's probe client for Node: heap samples, phases and metrics on memproof's probe protocol (version 1).
//
// Copy this one file next to your program (Node's standard library only) and call:
//
//   const probe = require('./memproof_probe');
//   probe.start();                 // first thing: says hello and samples the heap on a timer
//   probe.phase('load');           // a phase lasts until the next one
//   probe.metric('rows', 12000);
//   probe.finish();                // last thing: the final heap figures
//
// Run it under `cargo xtask measure --probe -- node app.js`. The heap is V8's `used_heap_size`
// (`v8.getHeapStatistics()`): the JavaScript heap, read at each sample and at each phase mark, so the peak is the
// highest figure read (a spike between two reads is not seen; the timer cannot fire while the program runs
// synchronously, so mark a phase where the peak is). Buffers outside V8's heap are not in it. The channel is the
// file descriptor named by MEMPROOF_PROBE_FD; without it every call does nothing.
'use strict';

const fs = require('fs');
const v8 = require('v8');

const PROTOCOL_VERSION = 1;
const PROBE_FD_ENV = 'MEMPROOF_PROBE_FD';
const SAMPLE_MS_ENV = 'MEMPROOF_SAMPLE_MS';
const DEFAULT_SAMPLE_MS = 10;

let fd = null;
let timer = null;
let peak = 0;

// CLOCK_MONOTONIC nanoseconds, as a decimal string: the figure does not fit a double exactly.
function monoNs() {
  return process.hrtime.bigint().toString();
}

function send(line) {
  if (fd === null) return;
  const data = Buffer.from(line + '\n');
  try {
    let written = 0;
    while (written < data.length) written += fs.writeSync(fd, data, written);
  } catch (_) {
    // memproof is gone; nobody is listening.
  }
}

function sample() {
  const heap = v8.getHeapStatistics().used_heap_size;
  if (heap > peak) peak = heap;
  send(`{"type":"heap","mono_ns":${monoNs()},"heap_bytes":${heap}}`);
  return heap;
}

// Connects to memproof's channel and samples the heap on a timer that does not keep the program alive.
function start() {
  if (fd !== null) return;
  const text = process.env[PROBE_FD_ENV] || '';
  // Taken out of the environment: a program this one starts does not speak for it.
  delete process.env[PROBE_FD_ENV];
  if (!/^[0-9]+$/.test(text)) return;
  fd = Number(text);
  const ms = /^[0-9]+$/.test(process.env[SAMPLE_MS_ENV] || '') ? Math.max(Number(process.env[SAMPLE_MS_ENV]), 1) : DEFAULT_SAMPLE_MS;
  send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, pid: process.pid, meter: 'v8' }));
  timer = setInterval(sample, ms);
  timer.unref();
  sample();
}

// Marks the start of a phase; the heap is read first, so the figure at the mark is in the timeline.
function phase(name) {
  if (fd === null) return;
  sample();
  send(`{"type":"phase","name":${JSON.stringify(String(name))},"mono_ns":${monoNs()}}`);
}

// Reports one of the program's own figures (any JSON value); a later report of the same name replaces it.
function metric(name, value) {
  if (fd === null) return;
  send(JSON.stringify({ type: 'metric', name: String(name), value }));
}

// Stops the timer and sends the final figures. Later calls do nothing.
function finish() {
  if (fd === null) return;
  clearInterval(timer);
  const end = sample();
  send(`{"type":"final","peak_heap_bytes":${peak},"end_heap_bytes":${end},"mono_ns":${monoNs()}}`);
  fd = null;
}

module.exports = { start, phase, metric, finish, PROTOCOL_VERSION };
