// A TypeScript device and Rust devices (the `ferry device` command line, on the Rust SDK) work
// offline against one `ferry serve`, then sync, and converge: each device equals a fresh device of
// its user made by the other SDK, nothing committed is lost, and a change the rules reject is in
// `SynchronizationError` with its reason. On SQLite always, and on PostgreSQL when
// FERRY_TEST_POSTGRES names a server.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

import { openDatabase, SyncEngine, memoryStorage, fileStorage } from "../../dist/index.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const root = join(here, "../../../..");
const FERRY = process.env.FERRY_BIN ?? join(root, "target/debug/ferry");
const MODEL = readFileSync(join(root, "crates/ferry-model/src/samples/field_service.toml"), "utf8");
const PASSWORD = "a long enough password";

/** A `ferry serve` of its own on a fresh database, stopped with `stop()`. */
async function startServer(backend) {
  const dir = mkdtempSync(join(tmpdir(), `ferry-converge-${backend}-`));
  const model = join(dir, "model.toml");
  writeFileSync(model, MODEL);
  let database = `sqlite:${join(dir, "ferry.db")}`;
  if (backend === "postgres") {
    const url = process.env.FERRY_TEST_POSTGRES;
    const name = `ferry_converge_${process.pid}`;
    execFileSync("psql", [url, "-q", "-c", `DROP DATABASE IF EXISTS ${name}`]);
    execFileSync("psql", [url, "-q", "-c", `CREATE DATABASE ${name}`]);
    database = `${url.slice(0, url.lastIndexOf("/"))}/${name}`;
  }
  const common = ["--model", model, "--database", database];
  const users = {};
  for (const [name, role] of [["pat", "Planner"], ["alice", "Technician"], ["bob", "Technician"], ["ada", "Admin"]]) {
    const said = execFileSync(FERRY, ["user", "add", name, "--role", role, "--password-stdin", ...common], {
      input: `${PASSWORD}\n`,
    }).toString();
    users[name] = said.match(/added with id ([0-9a-f-]{36})/)[1];
  }
  const child = spawn(FERRY, ["serve", ...common, "--files", join(dir, "files"), "--listen", "127.0.0.1:0"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = await new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).once("line", resolve);
    child.once("exit", (code) => reject(new Error(`ferry serve exited with ${code}`)));
  });
  const url = `http://${line.split("http://")[1].trim()}`;
  return { dir, url, users, stop: () => child.kill("SIGINT") };
}

/** A Rust device: `ferry device --db PATH --json …`, its answer parsed. */
function rustDevice(server, name) {
  const db = join(server.dir, `${name}-${Math.random().toString(16).slice(2)}.db`);
  const run = (...args) =>
    JSON.parse(
      execFileSync(FERRY, ["device", "--db", db, "--json", ...args], {
        env: { ...process.env, FERRY_PASSWORD: PASSWORD },
      }).toString(),
    );
  run("login", "--server", server.url, "--user", name);
  return {
    run,
    create: (entity, members) => run("create", entity, ...assignments(members)).id,
    set: (id, members) => run("set", id, ...assignments(members)),
    objects: (entity) => run("query", entity).objects,
  };
}

function assignments(members) {
  return Object.entries(members).map(([member, value]) => `${member}=${value ?? ""}`);
}

/** The entities a device holds objects of, compared between devices. */
const ENTITIES = ["Field.Country", "Field.City", "Field.Customer", "Field.Site", "Field.WorkOrder", "Field.Visit", "Field.Photo", "Field.Feedback"];

/** Every object a device holds, by entity, in a form both SDKs give alike. */
async function holdings(objectsOf) {
  const held = {};
  for (const entity of ENTITIES) {
    const objects = await objectsOf(entity);
    held[entity] = objects
      .map((o) => ({ id: o.id, values: sorted(o.values) }))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
  return held;
}

function sorted(values) {
  return Object.fromEntries(Object.entries(values).sort(([a], [b]) => a.localeCompare(b)));
}

async function tsDevice(server, name, storage) {
  const db = await openDatabase({ model: MODEL, storage });
  const engine = new SyncEngine(db, { server: server.url });
  await engine.signIn(name, PASSWORD);
  return { db, engine, objects: (entity) => db.query(entity) };
}

async function converge(backend) {
  const server = await startServer(backend);
  try {
    const { users } = server;
    // The planner plans, on a Rust device.
    const pat = rustDevice(server, "pat");
    const site = pat.create("Field.Site", { Name: "Depot", Address: "Quay 1" });
    const orders = [1, 2, 3].map((n) =>
      pat.create("Field.WorkOrder", {
        Number: n,
        Title: `Order ${n}`,
        "Field.WorkOrder_AssignedTo": n < 3 ? users.alice : users.bob,
        "Field.WorkOrder_Site": site,
      }),
    );
    pat.run("commit");
    assert.equal(pat.run("sync").uploaded, 4);

    // alice on the TypeScript SDK (a database file), bob on the Rust SDK.
    const alice = await tsDevice(server, "alice", fileStorage(join(server.dir, "alice.db")));
    const first = await alice.engine.sync({ mode: "all" });
    assert.equal(first.downloaded["Field.WorkOrder"], 2);
    const bob = rustDevice(server, "bob");
    assert.equal(bob.run("sync").downloaded["Field.WorkOrder"], 1);

    // Offline, each works: alice reports progress, records a visit and writes a member a
    // technician may not write; bob closes his order; the planner reprioritises alice's.
    const [w1, w2] = (await alice.db.query("Field.WorkOrder", null, { sort: [["Number", "asc"]] }));
    alice.db.set(w1, "Status", "InProgress");
    alice.db.set(w1, "Notes", "on my way");
    const visit = alice.db.create("Field.Visit");
    alice.db.set(visit, "StartedAt", "2026-12-04T09:00:00Z");
    alice.db.set(visit, "Summary", "pump replaced");
    alice.db.set(visit, "Field.Visit_WorkOrder", w1.id);
    alice.db.set(visit, "Field.Visit_Technician", users.alice);
    alice.db.set(w2, "Title", "Renamed by a technician");
    await alice.db.commit([w1, w2, visit]);
    assert.equal(await alice.db.pendingChanges(), 3);
    bob.set(orders[2], { Status: "Done", Completed: "true" });
    const bobVisit = bob.create("Field.Visit", {
      StartedAt: "2026-12-04T10:00:00Z",
      "Field.Visit_WorkOrder": orders[2],
      "Field.Visit_Technician": users.bob,
    });
    bob.run("commit");
    pat.set(orders[0], { Priority: 1, Notes: "call first" });
    pat.run("commit");

    // Back online, in an order where attributes meet: the planner first, alice after.
    assert.equal(pat.run("sync").uploaded, 1);
    const report = await alice.engine.sync({ mode: "all" });
    assert.equal(report.uploaded, 2, JSON.stringify(report));
    assert.equal(report.rejected.length, 1, JSON.stringify(report));
    assert.equal(report.rejected[0].id, w2.id);
    assert.match(report.rejected[0].reason, /Title/);
    assert.equal(bob.run("sync").uploaded, 2);
    for (const device of [alice]) await device.engine.sync({ mode: "all" });
    bob.run("sync");
    pat.run("sync");
    assert.equal(await alice.db.pendingChanges(), 0);

    // Nothing lost: the server has every applied change; the rejected one is refreshed away.
    const office = rustDevice(server, "pat");
    office.run("sync");
    const byId = Object.fromEntries(office.objects("Field.WorkOrder").map((o) => [o.id, o.values]));
    assert.equal(byId[orders[0]].Status, "InProgress");
    assert.equal(byId[orders[0]].Notes, "on my way", "alice's note was uploaded last");
    assert.equal(byId[orders[0]].Priority, 1, "the planner's priority stays beside it");
    assert.equal(byId[orders[1]].Title, "Order 2");
    assert.equal(byId[orders[2]].Status, "Done");
    const visits = office.objects("Field.Visit").map((o) => o.id).sort();
    assert.deepEqual(visits, [visit.id, bobVisit].sort());
    const [w2now] = (await alice.db.query("Field.WorkOrder", "[Number = 2]"));
    assert.equal(w2now.values.Title, "Order 2", "the rejected change gave way to the server's state");

    // The rejected change is in SynchronizationError, with its reason.
    const signIn = await fetch(`${server.url}/v1/sign-in`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user: "ada", password: PASSWORD }),
    }).then((r) => r.json());
    const failures = await fetch(`${server.url}/v1/failures`, {
      headers: { authorization: `Bearer ${signIn.token}` },
    }).then((r) => r.json());
    const failure = failures.failures.find((f) => f.object_id === w2.id);
    assert.ok(failure, JSON.stringify(failures));
    assert.equal(failure.attempted.Title, "Renamed by a technician");
    assert.match(failure.reason, /Title/);

    // Each device equals a fresh device of its user, made by the other SDK.
    const freshAlice = rustDevice(server, "alice");
    freshAlice.run("sync");
    assert.deepEqual(await holdings(alice.objects), await holdings(freshAlice.objects));
    const freshBob = await tsDevice(server, "bob", memoryStorage());
    await freshBob.engine.sync({ mode: "all" });
    assert.deepEqual(await holdings(bob.objects), await holdings(freshBob.objects));
    const freshPat = await tsDevice(server, "pat", memoryStorage());
    await freshPat.engine.sync({ mode: "all" });
    assert.deepEqual(await holdings(pat.objects), await holdings(freshPat.objects));

    // alice's database file, written by the TypeScript SDK, opens on the Rust SDK as it is.
    await alice.db.close();
    const status = JSON.parse(
      execFileSync(FERRY, ["device", "--db", join(server.dir, "alice.db"), "--json", "status"]).toString(),
    );
    assert.equal(status.user_id, users.alice);
    assert.equal(status.pending_changes, 0);
    for (const device of [freshBob, freshPat]) await device.db.close();
  } finally {
    server.stop();
  }
}

test("a TypeScript device and Rust devices converge on SQLite", () => converge("sqlite"));

test("a TypeScript device and Rust devices converge on PostgreSQL", { skip: !process.env.FERRY_TEST_POSTGRES && "FERRY_TEST_POSTGRES is not set" }, () =>
  converge("postgres"),
);
