// A restore of the server from a backup, with TypeScript devices (the scenario of
// `crates/ferry-cli/tests/it/faults.rs`, a_restore_from_a_backup_loses_nothing_a_device_uploaded_after_it):
// the backup is taken while a device uploads; after it devices A, B and L change work orders;
// the server stops, its data is wiped and `ferry restore` puts the backup back. A fresh device
// then sees exactly what the backup holds; a Rust device changes order 3 on the restored server,
// so its revision is the one A holds for L's lost change; A and B sync and converge with a fresh
// device, and nothing A or B uploaded after the backup is lost. On SQLite always, and on
// PostgreSQL when FERRY_TEST_POSTGRES names a server.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import { promisify } from "node:util";

import { openDatabase, SyncEngine, memoryStorage, fileStorage } from "../../dist/index.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../../../..");
const FERRY = process.env.FERRY_BIN ?? join(root, "target/debug/ferry");
const MODEL = readFileSync(join(root, "crates/ferry-model/src/samples/field_service.toml"), "utf8");
const PASSWORD = "a long enough password";
/** Work orders A uploads before the backup, and those on their way up while it is taken. */
const FIRST = 20;
const IN_FLIGHT = 300;

const run = promisify(execFile);

/** The server's data (a fresh database, its file contents, the model), served with `serve()`. */
function serverData(backend) {
  const dir = mkdtempSync(join(tmpdir(), `ferry-restore-${backend}-`));
  const model = join(dir, "model.toml");
  writeFileSync(model, MODEL);
  let database = `sqlite:${join(dir, "ferry.db")}`;
  let name = null;
  if (backend === "postgres") {
    const url = process.env.FERRY_TEST_POSTGRES;
    name = `ferry_restore_${process.pid}`;
    execFileSync("psql", [url, "-q", "-c", `DROP DATABASE IF EXISTS ${name}`]);
    execFileSync("psql", [url, "-q", "-c", `CREATE DATABASE ${name}`]);
    database = `${url.slice(0, url.lastIndexOf("/"))}/${name}`;
  }
  const files = join(dir, "files");
  const backup = join(dir, "backup");
  const common = ["--model", model, "--database", database];
  execFileSync(FERRY, ["user", "add", "pat", "--role", "Planner", "--password-stdin", ...common], { input: `${PASSWORD}\n` });

  return {
    dir,
    /** `ferry serve` on the data; `stop()` ends it and waits until it exited. */
    async serve() {
      const child = spawn(FERRY, ["serve", ...common, "--files", files, "--listen", "127.0.0.1:0", "--log", "warn"], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      const exited = new Promise((resolve) => child.once("exit", resolve));
      const line = await new Promise((resolve, reject) => {
        createInterface({ input: child.stdout }).once("line", resolve);
        child.once("exit", (code) => reject(new Error(`ferry serve exited with ${code}`)));
      });
      const url = `http://${line.split("http://")[1].trim()}`;
      return {
        url,
        async stop() {
          child.kill("SIGINT");
          await exited;
        },
      };
    },
    /** `ferry backup` while the server runs (on PostgreSQL, with the `pg_dump` beside it); does not block the event loop. */
    async takeBackup() {
      await run(FERRY, ["backup", "--database", database, "--files", files, "--to", backup]);
      if (name !== null) await run("pg_dump", ["--format=custom", "--file", join(backup, "ferry.pgdump"), database]);
    },
    /** With the server stopped: the data wiped, and the backup put back (`pg_restore` first on PostgreSQL); gives what `ferry restore` said. */
    wipeAndRestore() {
      rmSync(files, { recursive: true, force: true });
      if (name === null) {
        for (const end of ["", "-wal", "-shm"]) rmSync(`${database.slice("sqlite:".length)}${end}`, { force: true });
      } else {
        const url = process.env.FERRY_TEST_POSTGRES;
        execFileSync("psql", [url, "-q", "-c", `DROP DATABASE ${name}`]);
        execFileSync("psql", [url, "-q", "-c", `CREATE DATABASE ${name}`]);
        execFileSync("pg_restore", ["--no-owner", "--dbname", database, join(backup, "ferry.pgdump")]);
      }
      return execFileSync(FERRY, ["restore", "--from", backup, "--database", database, "--files", files, "--model", model]).toString();
    },
    /** With the server stopped: the PostgreSQL database dropped. */
    drop() {
      if (name !== null) execFileSync("psql", [process.env.FERRY_TEST_POSTGRES, "-q", "-c", `DROP DATABASE IF EXISTS ${name}`]);
    },
  };
}

/** A TypeScript device of pat, signed in. */
async function tsDevice(url, storage) {
  const db = await openDatabase({ model: MODEL, storage });
  const engine = new SyncEngine(db, { server: url });
  await engine.signIn("pat", PASSWORD);
  return { db, engine };
}

/** A Rust device of pat (`ferry device --db PATH --json …`), signed in. */
function rustDevice(url, path) {
  const device = (...args) =>
    JSON.parse(
      execFileSync(FERRY, ["device", "--db", path, "--json", ...args], {
        env: { ...process.env, FERRY_PASSWORD: PASSWORD },
      }).toString(),
    );
  device("login", "--server", url, "--user", "pat");
  return device;
}

/** The work orders a TypeScript device holds: id → {Number, Title}. */
async function orders(db) {
  return ordersOf(await db.query("Field.WorkOrder"));
}

/** The work orders a Rust device holds: id → {Number, Title}. */
function rustOrders(device) {
  return ordersOf(device("query", "Field.WorkOrder").objects);
}

function ordersOf(objects) {
  return new Map(objects.map((o) => [o.id, { Number: Number(o.values.Number), Title: o.values.Title ?? null }]));
}

/** Fails naming the orders a device holds otherwise than a fresh device does. */
function same(held, fresh, who) {
  const differ = [];
  for (const [id, state] of held) {
    const there = fresh.get(id);
    if (there === undefined || there.Number !== state.Number || there.Title !== state.Title) {
      differ.push(`${id} ${JSON.stringify(state)} (fresh: ${JSON.stringify(there ?? null)})`);
    }
  }
  for (const id of fresh.keys()) if (!held.has(id)) differ.push(`${id} ${JSON.stringify(fresh.get(id))} missing`);
  assert.ok(differ.length === 0, `${who} holds ${differ.length} orders otherwise than a fresh device: ${differ.slice(0, 20).join("; ")}`);
}

/** The same orders, by id, Number and Title. */
function equal(a, b) {
  if (a.size !== b.size) return false;
  for (const [id, state] of a) {
    const there = b.get(id);
    if (there === undefined || there.Number !== state.Number || there.Title !== state.Title) return false;
  }
  return true;
}

async function order(db, number) {
  const [found] = await db.query("Field.WorkOrder", `[Number = ${number}]`);
  return found ?? null;
}

async function title(db, number) {
  return (await order(db, number))?.values.Title ?? null;
}

async function retitle(db, number, text) {
  const found = await order(db, number);
  assert.ok(found, `order ${number} is on the device`);
  db.set(found, "Title", text);
  await db.commit(found);
}

async function commitNumbered(db, from, to) {
  const made = [];
  for (let n = from; n <= to; n++) {
    const o = db.create("Field.WorkOrder");
    db.set(o, "Number", n);
    db.set(o, "Title", `Order ${n}`);
    made.push(o);
  }
  await db.commit(made);
}

/** The server's epoch and the restores it came through (`GET /v1/model`). */
async function lineage(url) {
  const session = await fetch(`${url}/v1/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ user: "pat", password: PASSWORD }),
  }).then((r) => r.json());
  const model = await fetch(`${url}/v1/model`, { headers: { authorization: `Bearer ${session.token}` } }).then((r) => r.json());
  return { epoch: model.epoch ?? "", restored: model.restored ?? [] };
}

async function restore(backend) {
  const data = serverData(backend);
  let server = await data.serve();
  const opened = [];
  try {
    const a = await tsDevice(server.url, fileStorage(join(data.dir, "a.db")));
    opened.push(a);
    await commitNumbered(a.db, 1, FIRST);
    await a.engine.sync({ mode: "all" });
    const [b, l, r] = [await tsDevice(server.url, memoryStorage()), await tsDevice(server.url, memoryStorage()), await tsDevice(server.url, memoryStorage())];
    opened.push(b, l, r);
    for (const device of [b, l, r]) await device.engine.sync({ mode: "all" });
    const before = await orders(r.db);
    assert.equal(before.size, FIRST);
    const old = await lineage(server.url);
    assert.deepEqual(old.restored, [], "the server was never restored");

    // The backup is taken while more orders are on their way up: it starts with the upload.
    await commitNumbered(a.db, 1001, 1000 + IN_FLIGHT);
    let backup = null;
    const report = await a.engine.sync({
      mode: "all",
      onProgress: (progress) => {
        if (progress.phase === "upload" && backup === null) backup = data.takeBackup();
      },
    });
    assert.equal(report.uploaded, IN_FLIGHT);
    assert.ok(backup !== null, "the upload reported its progress");
    await backup;
    await r.engine.sync({ mode: "all" });
    const after = await orders(r.db);
    assert.equal(after.size, FIRST + IN_FLIGHT);

    // After the backup: A changes, creates and deletes; B and L change one order each.
    await retitle(a.db, 1, "A after the backup");
    await commitNumbered(a.db, 9001, 9001);
    await a.db.delete(await order(a.db, 2));
    await a.engine.sync({ mode: "all" });
    await retitle(b.db, 4, "B after the backup");
    await b.engine.sync({ mode: "all" });
    await retitle(l.db, 3, "L after the backup");
    await l.engine.sync({ mode: "all" });
    await a.engine.sync({ mode: "all" });
    assert.equal(await title(a.db, 3), "L after the backup");
    assert.equal(await title(b.db, 1), "A after the backup");
    await server.stop();

    const said = data.wipeAndRestore();
    assert.match(said, /epoch/, said);
    server = await data.serve();
    const now = await lineage(server.url);
    assert.notEqual(now.epoch, old.epoch, "a restore gives the data a new epoch");
    assert.equal(now.restored.length, 1, JSON.stringify(now));
    assert.equal(now.restored[0].epoch, old.epoch, JSON.stringify(now));

    // A fresh device sees the data as it was at the backup: before the upload in flight or after it.
    const first = await tsDevice(server.url, memoryStorage());
    opened.push(first);
    await first.engine.sync({ mode: "all" });
    const restored = await orders(first.db);
    assert.ok(
      equal(restored, before) || equal(restored, after),
      `${backend}: a fresh device sees the data as it was at the backup (${restored.size} orders, ${before.size} before the upload, ${after.size} after it)`,
    );
    console.log(`${backend}: the backup holds ${restored.size} orders (${before.size} before the upload in flight, ${after.size} after it)`);

    // L never syncs again. On the restored server a Rust device changes order 3 once more, so it
    // gets the revision A holds for L's lost title.
    const c = rustDevice(server.url, join(data.dir, "c.db"));
    c("sync");
    same(rustOrders(c), restored, `${backend}: C (Rust) after the restore`);
    const three = c("query", "Field.WorkOrder").objects.find((o) => Number(o.values.Number) === 3);
    c("set", three.id, "Title=C after the restore");
    c("commit");
    assert.equal(c("sync").uploaded, 1);

    // A and B sync against the restored server (new engines, for its new address).
    const engineA = new SyncEngine(a.db, { server: server.url });
    const engineB = new SyncEngine(b.db, { server: server.url });
    for (const engine of [engineA, engineB, engineA]) await engine.sync({ mode: "all" });
    assert.equal(await a.db.pendingChanges(), 0, `${backend}: A`);
    assert.equal(await b.db.pendingChanges(), 0, `${backend}: B`);

    const f = await tsDevice(server.url, memoryStorage());
    opened.push(f);
    await f.engine.sync({ mode: "all" });
    const fresh = await orders(f.db);
    same(await orders(a.db), fresh, `${backend}: A`);
    await engineB.sync({ mode: "all" });
    same(await orders(b.db), fresh, `${backend}: B`);
    c("sync");
    same(rustOrders(c), fresh, `${backend}: C (Rust)`);
    assert.equal(fresh.size, FIRST + IN_FLIGHT + 1 - 1, `${backend}: every order A made is there, order 2 is not`);
    assert.equal(await title(f.db, 1), "A after the backup");
    assert.equal(await title(f.db, 4), "B after the backup");
    assert.equal(await title(f.db, 3), "C after the restore");
    assert.equal(await order(f.db, 2), null, `${backend}: the order A deleted after the backup stays deleted`);
    assert.ok((await order(f.db, 9001)) !== null, `${backend}: the order A created after the backup is there`);
    const titles = new Map([...fresh.values()].map((o) => [o.Number, o.Title]));
    for (let n = 1001; n <= 1000 + IN_FLIGHT; n++) assert.equal(titles.get(n), `Order ${n}`, `${backend}: order ${n}`);
  } finally {
    for (const device of opened) await device.db.close().catch(() => {});
    await server.stop();
    data.drop();
  }
}

test("a restore from a backup loses nothing TypeScript devices uploaded after it, on SQLite", () => restore("sqlite"));

test(
  "a restore from a backup loses nothing TypeScript devices uploaded after it, on PostgreSQL",
  { skip: !process.env.FERRY_TEST_POSTGRES && "FERRY_TEST_POSTGRES is not set" },
  () => restore("postgres"),
);
