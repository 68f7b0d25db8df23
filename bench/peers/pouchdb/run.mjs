// PouchDB peer benchmark: pouchdb-server on 127.0.0.1 (a free port, its data in a temporary
// directory), bench.js run RUNS times against it, then one result line.
// usage: node run.mjs N [RUNS]        (RUNS defaults to 3; env BATCH_SIZE, BATCHES_LIMIT)
// stdout: exactly one line,
//   peer-result {"peer":"pouchdb","rows":N,"runs":R,"pull_full_ms":{"best":..,"median":..},
//                "push_1k_ms":{"best":..,"median":..},"client_bytes_per_row":..}
// stderr: progress, per-run results and, on failure, the reason (the exit status is then 1).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const SERVER_BIN = path.join(HERE, 'node_modules', 'pouchdb-server', 'bin', 'pouchdb-server');
const SERVER_START_TIMEOUT_MS = 60_000;
const RUN_TIMEOUT_MS = 60 * 60_000;

const say = (line) => process.stderr.write(`run.mjs: ${line}\n`);

class Failure extends Error {}

function parseArgs(argv) {
  const usage = 'usage: node run.mjs N [RUNS]';
  const [nText, runsText = '3', ...rest] = argv;
  const positive = (text) => (/^[1-9][0-9]*$/.test(text ?? '') ? Number(text) : NaN);
  const rows = positive(nText);
  const runs = positive(runsText);
  if (rest.length || !Number.isSafeInteger(rows) || !Number.isSafeInteger(runs)) throw new Failure(usage);
  return { rows, runs };
}

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.unref();
    probe.on('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function tail(file, lines = 20) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no server output)';
  }
}

// Starts pouchdb-server and resolves once it answers GET / with its welcome document.
async function startServer(port, dataDir) {
  const serverDir = path.join(dataDir, 'server');
  fs.mkdirSync(serverDir, { recursive: true });
  const logFile = path.join(dataDir, 'server.out');
  const out = fs.openSync(logFile, 'w');
  const child = spawn(
    process.execPath,
    [
      SERVER_BIN,
      '--host', '127.0.0.1',
      '--port', String(port),
      '--dir', serverDir,
      '--config', path.join(serverDir, 'config.json'),
      '--no-stdout-logs',
      '--no-color',
    ],
    { cwd: serverDir, stdio: ['ignore', out, out] },
  );
  fs.closeSync(out);
  let exited = null;
  child.on('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `status ${code}`;
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
  for (;;) {
    if (exited) throw new Failure(`pouchdb-server exited (${exited}) before it answered:\n${tail(logFile)}`);
    try {
      const response = await fetch(`${url}/`, { signal: AbortSignal.timeout(2000) });
      const body = response.ok ? await response.json() : null;
      if (body) {
        // The welcome document lists the adapters; the benchmark needs LevelDB on disk.
        const adapters = body['pouchdb-adapters'] ?? [];
        if (!adapters.includes('leveldb')) {
          child.kill('SIGKILL');
          throw new Failure(`pouchdb-server runs without its LevelDB adapter (adapters: ${JSON.stringify(adapters)})`);
        }
        return { child, url, logFile };
      }
    } catch (error) {
      if (error instanceof Failure) throw error;
      // not up yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Failure(`pouchdb-server did not answer on ${url} within ${SERVER_START_TIMEOUT_MS / 1000} s:\n${tail(logFile)}`);
    }
    await sleep(200);
  }
}

async function stopServer(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

// The bench.js run in progress, ended by the cleanup if run.mjs is stopped.
let running = null;

// One bench.js run; resolves with its JSON result.
function benchOnce(url, rows, clientDir, tag) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(HERE, 'bench.js'), url, String(rows), clientDir, tag], {
      cwd: HERE,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    running = child;
    let stdout = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => (stdout += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', (error) => reject(new Failure(`cannot start bench.js: ${error.message}`)));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running = null;
      if (code !== 0) {
        reject(new Failure(`bench.js ${tag} failed (${signal ? `signal ${signal}` : `status ${code}`})`));
        return;
      }
      const last = stdout.trim().split('\n').pop();
      try {
        resolve(JSON.parse(last));
      } catch {
        reject(new Failure(`bench.js ${tag} printed no result line: ${JSON.stringify(stdout)}`));
      }
    });
  });
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};
const round1 = (x) => Math.round(x * 10) / 10;
const summary = (values) => ({ best: round1(Math.min(...values)), median: round1(median(values)) });

async function main() {
  const { rows, runs } = parseArgs(process.argv.slice(2));
  for (const pkg of ['pouchdb-node', 'pouchdb-server']) {
    if (!fs.existsSync(path.join(HERE, 'node_modules', pkg, 'package.json'))) {
      throw new Failure(`${pkg} is not installed: run \`npm ci\` in ${HERE}`);
    }
  }

  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferry-peer-pouchdb-'));
  let server = null;
  const cleanup = async () => {
    running?.kill('SIGKILL');
    await stopServer(server?.child);
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => {
      say(`${signal}: stopping`);
      cleanup().finally(() => process.exit(1));
    });
  }

  try {
    const port = await freePort();
    server = await startServer(port, dataDir);
    say(`pouchdb-server on ${server.url}, data in ${dataDir}`);
    const results = [];
    for (let run = 1; run <= runs; run++) {
      const clientDir = path.join(dataDir, 'client');
      const result = await benchOnce(server.url, rows, clientDir, `r${run}`);
      fs.rmSync(clientDir, { recursive: true, force: true });
      if (result.rows !== rows) throw new Failure(`run ${run} measured ${result.rows} rows, not ${rows}`);
      say(`run ${run}/${runs}: ${JSON.stringify(result)}`);
      results.push(result);
    }
    const line = {
      peer: 'pouchdb',
      rows,
      runs,
      pull_full_ms: summary(results.map((r) => r.pull_full_ms)),
      push_1k_ms: summary(results.map((r) => r.push_1k_ms)),
      client_bytes_per_row: round1(median(results.map((r) => r.client_bytes_per_row))),
    };
    say(`batch_size ${results[0].batch_size}, batches_limit ${results[0].batches_limit}`);
    await cleanup();
    process.stdout.write(`peer-result ${JSON.stringify(line)}\n`);
  } catch (error) {
    await cleanup();
    throw error;
  }
}

main().catch((error) => {
  say(`FAILED: ${error instanceof Failure ? error.message : error?.stack ?? error}`);
  process.exit(1);
});
