/**
 * The device database format: a database this SDK writes to a file is the Rust SDK's (the
 * `ferry device` command opens it, reads its objects and state, changes it and syncs it), and
 * this SDK opens what the Rust SDK wrote. Also: the file is written back at each commit.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";

import { SyncEngine, fileStorage, openDatabase, FerryError } from "@ferry/sdk";

import { MODEL, PASSWORD, ferry, scratch, startServer } from "./harness.js";
import type { TestServer } from "./harness.js";

describe("a database in a file", () => {
  let dir: string;
  before(async () => {
    dir = await scratch("file");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("is written back at each commit and opens again with its objects, changes and contents", async () => {
    const path = join(dir, "device.db");
    const db = await openDatabase({ model: MODEL, storage: fileStorage(path) });
    const site = db.create("Field.Site");
    db.set(site, "Name", "Depot");
    await db.commit(site);
    const photo = db.create("Field.Photo");
    await db.attachFile(photo, new Blob(["pixels"]), "a.jpg");
    await db.commit(photo);
    assert.ok((await stat(path)).size > 0, "the commit wrote the file");
    await db.close();

    const again = await openDatabase({ model: MODEL, storage: fileStorage(path) });
    assert.equal((await again.find("Field.Site", site.id))?.values["Name"], "Depot");
    assert.equal(await again.pendingChanges(), 2);
    const held = await again.find("Field.Photo", photo.id);
    assert.ok(held);
    assert.equal(await (await again.readFile(held))?.text(), "pixels");
    const hash = String(held.values["ContentHash"]);
    assert.deepEqual(await readdir(join(`${path}.files`, hash.slice(0, 2))), [hash], "contents lie by their SHA-256 as the Rust SDK keeps them");
    await again.close();
    assert.throws(() => fileStorage(""), FerryError);
  });
});

describe("the Rust SDK and this one share a device database", () => {
  let server: TestServer;
  let dir: string;
  before(async () => {
    server = await startServer("sqlite", [{ name: "pat", role: "Planner" }]);
    dir = await scratch("shared");
  });
  after(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test("a database written here is read, changed and synced by `ferry device`, and back", async () => {
    const path = join(dir, "pat.db");
    const db = await openDatabase({ model: MODEL, storage: fileStorage(path) });
    const engine = new SyncEngine(db, { server: server.url });
    const user = await engine.signIn("pat", PASSWORD);
    const synced = db.create("Field.Site");
    db.set(synced, "Name", "Synced");
    await db.commit(synced);
    await engine.sync();
    const waiting = db.create("Field.Site");
    db.set(waiting, "Name", "Waiting");
    await db.commit(waiting);
    await db.close();

    const status = JSON.parse(await ferry(["device", "--db", path, "--json", "status"])) as Record<string, unknown>;
    assert.equal(status["user_id"], user);
    assert.equal(status["server"], server.url);
    assert.equal(status["pending_changes"], 1);
    const listed = JSON.parse(await ferry(["device", "--db", path, "--json", "query", "Field.Site"])) as {
      objects: { id: string; values: Record<string, unknown> }[];
    };
    assert.deepEqual(listed.objects.map((object) => object.values["Name"]).sort(), ["Synced", "Waiting"]);

    await ferry(["device", "--db", path, "set", synced.id, "Address=Main 1"]);
    await ferry(["device", "--db", path, "commit"]);

    const reopened = await openDatabase({ model: MODEL, storage: fileStorage(path) });
    assert.equal((await reopened.find("Field.Site", synced.id))?.values["Address"], "Main 1");
    assert.deepEqual(
      (await reopened.pendingObjects()).map((pending) => [pending.id, pending.kind, pending.members.join(",")]).sort(),
      [
        [synced.id, "update", "Address"],
        [waiting.id, "create", "Address,Name,Field.Site_City,Field.Site_Customer"],
      ].sort(),
    );
    const resumed = new SyncEngine(reopened, { server: server.url });
    const report = await resumed.sync();
    assert.equal(report.uploaded, 2);
    await reopened.close();

    const output = await ferry(["device", "--db", path, "--json", "sync"]);
    assert.equal((JSON.parse(output) as { uploaded: number }).uploaded, 0, "the Rust SDK syncs it with the session kept here");
    const after = JSON.parse(await ferry(["device", "--db", path, "--json", "status"])) as Record<string, unknown>;
    assert.equal(after["pending_changes"], 0);
  });
});
