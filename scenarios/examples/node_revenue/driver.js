// The load for node_revenue/server.js: writes the orders export (MEMPROOF_SIZE bytes of NDJSON, orders.ndjson in the
// shared work directory), then sends `requests` GETs of /revenue one after another, each answer checked against
// the sum of what it wrote, then /shutdown. Prints its figures as one JSON object on stdout. Run by memproof beside
// the server, outside the measurement.
'use strict';

const fs = require('fs');
const http = require('http');

function get(port, url) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: url }, (response) => {
        let body = '';
        response.on('data', (chunk) => (body += chunk));
        response.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

async function waitForPort() {
  for (let tries = 0; tries < 3000; tries++) {
    try {
      return Number(fs.readFileSync('port', 'utf8'));
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  throw new Error('the server never wrote its port');
}

// Writes the export a line at a time and returns the sum of its amounts.
function writeExport(size) {
  const fd = fs.openSync('orders.ndjson.tmp', 'w');
  let written = 0;
  let cents = 0;
  for (let id = 0; written < size; id++) {
    const amount = 100 + ((id * 7919) % 90000);
    const line = JSON.stringify({ id, customer: `c${id % 977}`, amount, note: 'x'.repeat(120) }) + '\n';
    fs.writeSync(fd, line);
    written += Buffer.byteLength(line);
    cents += amount;
  }
  fs.closeSync(fd);
  fs.renameSync('orders.ndjson.tmp', 'orders.ndjson');
  return cents;
}

async function main() {
  const params = JSON.parse(process.env.MEMPROOF_PARAMS);
  const expected = writeExport(Number(process.env.MEMPROOF_SIZE));
  const port = await waitForPort();
  const figures = { answers_right: 0, answers_wrong: 0, requests_failed: 0 };
  for (let i = 0; i < params.requests; i++) {
    try {
      const { cents } = JSON.parse(await get(port, '/revenue'));
      figures[cents === expected ? 'answers_right' : 'answers_wrong'] += 1;
    } catch {
      figures.requests_failed += 1;
    }
  }
  await get(port, '/shutdown').catch(() => {});
  process.stdout.write(JSON.stringify(figures) + '\n');
}

main().catch((error) => {
  process.stderr.write(`driver.js: ${error.message}\n`);
  process.exit(1);
});
