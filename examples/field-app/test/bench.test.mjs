// The sync benchmark (bench.html, driven by bench/run.mjs as `ferry bench --only browser` runs
// it) against a real server holding work orders a planner's device uploaded: it prints its
// times as one JSON line, leaves the server's work orders as it found them, and fails, saying
// why, on a wrong password, on missing work orders and on bad arguments.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { SyncEngine, memoryStorage, openDatabase } from "@ferry/sdk";

import { APP_DIR, MODEL_FILE, Server, cleanup, temporaryDirectory } from "./harness.mjs";

const PLANNER = { name: "planner", password: "the planner's password" };
/** Work orders on the server before the benchmark runs. */
const SEEDED = 40;

let directory;
let server;

/** A planner's device in memory, signed in. */
async function plannerDevice() {
  const db = await openDatabase({ model: readFileSync(MODEL_FILE, "utf8"), storage: memoryStorage() });
  const engine = new SyncEngine(db, { server: server.url });
  await engine.signIn(PLANNER.name, PLANNER.password);
  return { db, engine };
}

/** Runs bench/run.mjs to its end; gives its exit code and what it printed. */
function runBench(args, password = PLANNER.password) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(APP_DIR, "bench/run.mjs"), ...args], {
      env: { ...process.env, FERRY_PASSWORD: password },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

function benchArgs(rows, rounds = 2) {
  return ["--url", `${server.url}/bench.html`, "--rows", String(rows), "--push", "15", "--rounds", String(rounds), "--user", PLANNER.name];
}

before(async () => {
  directory = temporaryDirectory("ferry-field-bench-");
  server = new Server(directory);
  await server.addUser(PLANNER.name, "Planner", PLANNER.password);
  await server.start();
  const { db, engine } = await plannerDevice();
  const orders = [];
  for (let number = 1; number <= SEEDED; number++) {
    const order = db.create("Field.WorkOrder");
    db.set(order, "Number", number);
    db.set(order, "Title", `Work order ${number}`);
    orders.push(order);
  }
  await db.commit(orders);
  const report = await engine.sync({ mode: "all" });
  assert.equal(report.uploaded, SEEDED);
  await db.close();
});

after(async () => {
  await server?.stop();
  if (directory) cleanup(directory);
});

test("the benchmark prints the best of its rounds and leaves the server's work orders as they were", async () => {
  const { code, stdout, stderr } = await runBench(benchArgs(SEEDED));
  assert.equal(code, 0, stderr);
  const lines = stdout.trim().split("\n");
  assert.equal(lines.length, 1, `one line on standard output: ${stdout}`);
  const result = JSON.parse(lines[0]);
  assert.deepEqual(Object.keys(result).sort(), ["bytes", "initial_ms", "push_ms"]);
  assert.ok(result.initial_ms > 0 && result.push_ms > 0, stdout);
  assert.ok(result.bytes >= 4096 && result.bytes % 4096 === 0, `the database's size in pages: ${result.bytes}`);
  for (const round of [1, 2]) {
    assert.match(stderr, new RegExp(`browser round ${round}: initial sync [\\d.]+ ms \\(${SEEDED} work orders, \\d+ bytes\\); push of 15 [\\d.]+ ms`));
  }
  const best = Math.min(...[...stderr.matchAll(/initial sync ([\d.]+) ms \(/g)].map((match) => Number(match[1])));
  assert.ok(Math.abs(best - result.initial_ms) < 0.1, `the best round's time is printed: ${best} and ${result.initial_ms}`);

  // The pushed work orders were deleted again: a fresh device receives the seeded ones only.
  const { db, engine } = await plannerDevice();
  const report = await engine.sync({ mode: "all" });
  assert.equal(report.downloaded["Field.WorkOrder"], SEEDED);
  await db.close();
});

test("the benchmark fails, saying why, when the server holds fewer work orders than it is told", async () => {
  const { code, stdout, stderr } = await runBench(benchArgs(SEEDED + 1, 1));
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.match(stderr, new RegExp(`the initial sync brought ${SEEDED} of the ${SEEDED + 1} seeded work orders`));
});

test("the benchmark fails on a wrong password, and on arguments it cannot use", async () => {
  const wrong = await runBench(benchArgs(SEEDED, 1), "not the password");
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /round 1: .*(password|sign)/i);

  const missing = await runBench(["--url", `${server.url}/bench.html`, "--rows", "10"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /--push is missing/);

  const notNumber = await runBench(["--url", `${server.url}/bench.html`, "--rows", "ten", "--push", "1", "--rounds", "1", "--user", "planner"]);
  assert.equal(notNumber.code, 1);
  assert.match(notNumber.stderr, /--rows takes a whole number of at least 1, not "ten"/);

  const noPassword = await runBench(benchArgs(SEEDED, 1), "");
  assert.equal(noPassword.code, 1);
  assert.match(noPassword.stderr, /FERRY_PASSWORD/);

  const noPage = await runBench(["--url", `${server.url}/no-such-page.html`, "--rows", "1", "--push", "1", "--rounds", "1", "--user", "planner"]);
  assert.equal(noPage.code, 1);
  assert.match(noPage.stderr, /no-such-page\.html answered 404/);
});
