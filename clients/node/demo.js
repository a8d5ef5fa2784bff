// A program with a known heap, for memproof_probe's test and README: holds an array of doubles of SIZE bytes
// (argv[2]) on V8's heap, and reports what V8 itself says its heap is while it holds it.
'use strict';
const v8 = require('v8');
const probe = require('./memproof_probe');

probe.start();
const size = Number(process.argv[2]);
probe.phase('allocate');
let held = new Array(size / 8).fill(0.5);
probe.phase('hold');
probe.metric('runtime_heap_bytes', v8.getHeapStatistics().used_heap_size);
probe.metric('held_elements', held.length);
held = null;
probe.phase('release');
probe.finish();
