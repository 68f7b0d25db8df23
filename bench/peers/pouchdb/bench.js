// One run of the PouchDB <-> pouchdb-server benchmark, on 127.0.0.1 only.
// usage: node bench.js <serverUrl> <N> <clientDir> <runTag>
// env:   BATCH_SIZE (default 1000), BATCHES_LIMIT (default 10)
// Prints one JSON line with the measurements on stdout; progress goes to stderr.
//
// Steps:
//   seed        N work orders (rows.js, rows 1..N) written to a new server database with
//               _bulk_docs in batches of 1,000; setup, not a sync measurement
//   pull_full   a fresh client (PouchDB, LevelDB on disk in <clientDir>) runs
//               replicate.from(server) until it holds all N documents
//   client_disk the bytes of the client's LevelDB files right after the pull
//   push_prime  a first replicate.to(server), untimed for push_1k: the client's push checkpoint
//               starts at 0, so PouchDB walks all N pulled documents and asks the server's
//               _revs_diff once (nothing is sent)
//   push_1k     1,000 new work orders (rows N+1..N+1000) written locally, then timed from the
//               start of replicate.to(server) until it completes; the server must then hold
//               N + 1,000 documents
// The server database is destroyed at the end, so runs against one server do not add up.
'use strict';

const fs = require('fs');
const path = require('path');
const PouchDB = require('pouchdb-node'); // LevelDB (leveldown) adapter and the http adapter
const { workOrders } = require('./rows.js');

// PouchDB's own default batch_size is 100; 1,000 is the tuned value (markedly faster pulls).
const BATCH_SIZE = positiveInt(process.env.BATCH_SIZE || '1000', 'BATCH_SIZE');
const BATCHES_LIMIT = positiveInt(process.env.BATCHES_LIMIT || '10', 'BATCHES_LIMIT');
const SEED_BATCH = 1000;
const PUSH_ROWS = 1000;

function positiveInt(text, name) {
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not '${text}'`);
  return value;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function timed(work) {
  const start = nowMs();
  const result = await work();
  return [nowMs() - start, result];
}

function checkBulk(results, what) {
  const failed = results.find((r) => r.error);
  if (failed) throw new Error(`${what}: ${JSON.stringify(failed)}`);
}

function directoryBytes(dir) {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? directoryBytes(full) : fs.statSync(full).size;
  }
  return total;
}

async function main() {
  const [serverUrl, nArg, clientDir, runTag] = process.argv.slice(2);
  if (!serverUrl || !nArg || !clientDir || !runTag) {
    throw new Error('usage: node bench.js <serverUrl> <N> <clientDir> <runTag>');
  }
  const N = positiveInt(nArg, 'N');
  const log = (line) => process.stderr.write(`pouchdb ${runTag}: ${line}\n`);

  const remote = new PouchDB(`${serverUrl}/bench_${runTag}`);
  await remote.info(); // creates the database on the server

  const [seedMs] = await timed(async () => {
    for (let first = 1; first <= N; first += SEED_BATCH) {
      checkBulk(await remote.bulkDocs(workOrders(first, Math.min(SEED_BATCH, N - first + 1))), 'seed');
    }
  });
  const seeded = await remote.info();
  if (seeded.doc_count !== N) throw new Error(`the server holds ${seeded.doc_count} documents after the seed, not ${N}`);
  log(`seeded ${N} rows in ${(seedMs / 1000).toFixed(1)} s`);

  const localDir = path.join(clientDir, `client_${runTag}`);
  fs.rmSync(localDir, { recursive: true, force: true });
  fs.mkdirSync(clientDir, { recursive: true });
  const local = new PouchDB(localDir);
  const options = { batch_size: BATCH_SIZE, batches_limit: BATCHES_LIMIT };

  const [pullMs, pulled] = await timed(() => local.replicate.from(remote, options));
  const afterPull = await local.info();
  if (afterPull.doc_count !== N) throw new Error(`the client holds ${afterPull.doc_count} documents after the pull, not ${N}`);
  const clientBytes = directoryBytes(localDir);
  log(`pulled ${pulled.docs_written} docs in ${(pullMs / 1000).toFixed(2)} s; client LevelDB ${clientBytes} bytes`);

  const [primeMs] = await timed(() => local.replicate.to(remote, options));
  const [localWriteMs] = await timed(async () => checkBulk(await local.bulkDocs(workOrders(N + 1, PUSH_ROWS)), 'local write'));
  const [pushMs, pushed] = await timed(() => local.replicate.to(remote, options));
  const afterPush = await remote.info();
  if (afterPush.doc_count !== N + PUSH_ROWS) {
    throw new Error(`the server holds ${afterPush.doc_count} documents after the push, not ${N + PUSH_ROWS}`);
  }
  if (pushed.docs_written !== PUSH_ROWS) throw new Error(`the push wrote ${pushed.docs_written} documents, not ${PUSH_ROWS}`);
  log(`pushed ${PUSH_ROWS} docs in ${pushMs.toFixed(1)} ms (prime ${primeMs.toFixed(0)} ms)`);

  await local.close();
  await remote.destroy();

  const round = (ms) => Math.round(ms * 10) / 10;
  console.log(
    JSON.stringify({
      rows: N,
      batch_size: BATCH_SIZE,
      batches_limit: BATCHES_LIMIT,
      seed_ms: round(seedMs),
      pull_full_ms: round(pullMs),
      pull_full_docs_written: pulled.docs_written,
      client_disk_bytes: clientBytes,
      client_bytes_per_row: round(clientBytes / N),
      push_prime_ms: round(primeMs),
      local_write_1k_ms: round(localWriteMs),
      push_1k_ms: round(pushMs),
      push_1k_docs_written: pushed.docs_written,
    }),
  );
}

main().catch((error) => {
  console.error(`bench.js: ${error && error.stack ? error.stack : error}`);
  process.exit(1);
});
