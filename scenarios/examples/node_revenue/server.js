// An orders service in Node (standard library only): GET /revenue sums the `amount` of every order in an NDJSON
// export (orders.ndjson in the current directory, which the driver writes), the way a user's incident had it. Run
// by memproof as a technique of node-revenue.toml, in the case's work directory. It listens on a free loopback
// port, writes it to the file `port` for the driver, and serves until the driver asks for /shutdown.
//
// - parse_whole_export (the bug): each request reads the whole export into one string, splits it and parses every
//   order before summing: the export several times over on the JavaScript heap, per request.
// - stream_export (the fix): each request reads the export through a line stream and adds each order's amount as
//   it goes.
//
// The heap figures are V8's, through memproof's Node probe client; each request marks a phase when its orders are
// summed, the moment the whole-export technique holds the most.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const probe = require(path.join(__dirname, '..', '..', '..', 'clients', 'node', 'memproof_probe.js'));

const EXPORT = 'orders.ndjson';

function parseWholeExport(done) {
  const orders = fs.readFileSync(EXPORT, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const cents = orders.reduce((sum, order) => sum + order.amount, 0);
  probe.phase('summed');
  done(cents);
}

function streamExport(done) {
  let cents = 0;
  const lines = readline.createInterface({ input: fs.createReadStream(EXPORT), crlfDelay: Infinity });
  lines.on('line', (line) => {
    if (line) cents += JSON.parse(line).amount;
  });
  lines.on('close', () => {
    probe.phase('summed');
    done(cents);
  });
}

function main() {
  probe.start();
  const technique = process.argv[2];
  const sum = { parse_whole_export: parseWholeExport, stream_export: streamExport }[technique];
  if (!sum) {
    process.stderr.write(`server.js: unknown technique ${technique}: expected parse_whole_export or stream_export\n`);
    process.exit(2);
  }
  let served = 0;
  const server = http.createServer((request, response) => {
    if (request.url === '/shutdown') {
      response.end();
      server.close(() => {
        probe.metric('requests_served', served);
        probe.finish();
      });
      return;
    }
    sum((cents) => {
      served += 1;
      response.setHeader('Content-Type', 'application/json');
      response.end(JSON.stringify({ cents }));
    });
  });
  server.listen(0, '127.0.0.1', () => {
    fs.writeFileSync('port.tmp', String(server.address().port));
    fs.renameSync('port.tmp', 'port');
    probe.phase('serve');
  });
}

main();
