/**
 * End-to-end: devices on this SDK against a real `ferry serve` (SQLite, and PostgreSQL when
 * `FERRY_TEST_POSTGRES` is set): sign-in, the three sync modes, rejected changes, progress,
 * cancellation, server actions, file contents between devices, a failed removal of unreferenced
 * contents after a sync, and live mode.
 */

import { after, before, describe, mock, test } from "node:test";
import assert from "node:assert/strict";

import { FerryError, SIMULTANEOUS_SYNC_MESSAGE, SyncEngine, memoryStorage, openDatabase } from "@ferry/sdk";
import type { Database, FerryObject, Progress, Storage, SyncReport } from "@ferry/sdk";

import { MODEL, PASSWORD, backends, eventually, inspectedDatabase, memoryDatabase, startServer } from "./harness.js";
import type { TestServer } from "./harness.js";

interface Device {
  db: Database;
  engine: SyncEngine;
  user: string;
}

async function refused(call: () => Promise<unknown>, kind: string, ...parts: string[]): Promise<FerryError> {
  let caught: unknown;
  try {
    await call();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FerryError, `expected a FerryError of kind ${kind}, got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  for (const part of parts) assert.ok(caught.message.includes(part), `${JSON.stringify(caught.message)} lacks ${JSON.stringify(part)}`);
  return caught;
}

for (const backend of backends()) {
  describe(`sync with a server on ${backend}`, () => {
    let server: TestServer;
    let numbers = 0;
    const devices: Device[] = [];

    before(async () => {
      server = await startServer(backend, [
        { name: "pat", role: "Planner" },
        { name: "paula", role: "Planner" },
        { name: "alice", role: "Technician" },
        { name: "bob", role: "Technician" },
        { name: "carl", role: "Technician" },
        { name: "dave", role: "Technician" },
        { name: "erin", role: "Planner" },
      ]);
    });

    after(async () => {
      for (const device of devices) {
        await device.engine.stopLive();
        await device.db.close();
      }
      await server.stop();
    });

    const shared = new Map<string, Promise<Device>>();

    /**
     * The device of `name` the tests share (the server limits sign-ins per user and minute,
     * so each user signs in on few devices).
     */
    function device(name: "pat" | "alice" | "bob"): Promise<Device> {
      let found = shared.get(name);
      if (found === undefined) shared.set(name, (found = freshDevice(name)));
      return found;
    }

    /** A new device signed in as `name`. */
    async function freshDevice(name: string): Promise<Device> {
      const db = await memoryDatabase();
      const engine = new SyncEngine(db, { server: server.url });
      const user = await engine.signIn(name, PASSWORD);
      const made = { db, engine, user };
      devices.push(made);
      return made;
    }

    async function site(db: Database, name: string): Promise<FerryObject> {
      const made = db.create("Field.Site");
      db.set(made, "Name", name);
      await db.commit(made);
      return made;
    }

    /** A work order with a number no other test uses. */
    async function order(db: Database, fields: Record<string, unknown>): Promise<FerryObject> {
      numbers += 1;
      const made = db.create("Field.WorkOrder");
      db.set(made, "Number", 1000 * (backend === "sqlite" ? 1 : 2) + numbers);
      db.set(made, "Title", `Order ${numbers}`);
      for (const [member, value] of Object.entries(fields)) db.set(made, member, value);
      await db.commit(made);
      return made;
    }

    test("sign in, a full sync up and down, and each user's data", async () => {
      const pat = await device("pat");
      const alice = await device("alice");
      const bob = await device("bob");
      assert.match(alice.user, /^[0-9a-f-]{36}$/);
      const depot = await site(pat.db, "Depot");
      const pump = await order(pat.db, { WorkOrder_Site: depot, WorkOrder_AssignedTo: alice.user });
      const up = await pat.engine.sync({ mode: "all" });
      assert.equal(up.uploaded, 2);
      assert.deepEqual(up.rejected, []);
      assert.equal(await pat.db.pendingChanges(), 0);

      const down = await alice.engine.sync();
      assert.ok((down.downloaded["Field.WorkOrder"] ?? 0) >= 1, JSON.stringify(down));
      const held = await alice.db.find("Field.WorkOrder", pump.id);
      assert.equal(held?.values["Title"], pump.values["Title"]);
      assert.equal(held?.values["Field.WorkOrder_Site"], depot.id);
      assert.notEqual(await alice.db.find("Field.Site", depot.id), null);
      const status = await alice.db.status();
      assert.equal(status.user, alice.user);
      assert.equal(status.server, server.url);
      assert.equal(status.lastSync?.mode, "all");
      assert.equal(status.fullSyncDue, null);
      assert.deepEqual(status.roles, ["Technician"], "the roles the sign-in gave are kept");

      await bob.engine.sync();
      assert.notEqual(await bob.db.find("Field.Site", depot.id), null, "every technician reads sites");
      assert.equal(await bob.db.find("Field.WorkOrder", pump.id), null, "a technician reads only the orders assigned to them");
    });

    test("a wrong password is refused and changes nothing; a second sync at once is refused", async () => {
      const db = await memoryDatabase();
      const engine = new SyncEngine(db, { server: server.url });
      await refused(() => engine.signIn("dave", "not the password"), "not-signed-in", "wrong user name or password");
      assert.equal((await db.status()).user, null);
      await refused(() => engine.sync(), "not-signed-in");
      await db.close();
      const pat = await device("pat");
      const first = pat.engine.sync();
      const second = await refused(() => pat.engine.sync(), "already-running");
      assert.equal(second.message, SIMULTANEOUS_SYNC_MESSAGE);
      await first;
    });

    test("another user's sign-in waits for the previous user's changes, then their data leaves", async () => {
      const inspected = await inspectedDatabase();
      const engine = new SyncEngine(inspected.db, { server: server.url });
      const first = { db: inspected.db, engine, user: await engine.signIn("paula", PASSWORD) };
      devices.push(first);
      const journaled = () => Number(inspected.connection.all("SELECT count(*) FROM ferry_uploaded")[0]?.[0]);
      await site(first.db, "Before the switch");
      await refused(() => first.engine.signIn("carl", PASSWORD), "another-users-changes", "1 changes");
      assert.equal((await first.db.status()).user, first.user, "nothing changed");
      await first.engine.sync();
      assert.ok((await first.db.query("Field.Site")).length > 0);
      assert.equal(journaled(), 1, "the upload is in the journal");
      const carl = await first.engine.signIn("carl", PASSWORD);
      assert.equal(journaled(), 0, "the previous user's uploads are not carl's to send again");
      const status = await first.db.status();
      assert.equal(status.user, carl);
      assert.equal(status.fullSyncDue, "first-sync");
      assert.deepEqual(await first.db.query("Field.Site"), [], "the previous user's objects left the device");
    });

    test("offline edits and a deletion go up at the next sync", async () => {
      const pat = await device("pat");
      const alice = await device("alice");
      const depot = await site(pat.db, "North");
      const pump = await order(pat.db, { WorkOrder_Site: depot, WorkOrder_AssignedTo: alice.user });
      await pat.engine.sync();
      await alice.engine.sync();
      const mine = await alice.db.find("Field.WorkOrder", pump.id);
      assert.ok(mine);
      alice.db.set(mine, "Notes", "the pump is noisy");
      alice.db.set(mine, "Status", "InProgress");
      await alice.db.commit(mine);
      assert.deepEqual(await alice.db.pendingObjects(), [{ entity: "Field.WorkOrder", id: pump.id, kind: "update", members: ["Notes", "Status"] }]);
      const report = await alice.engine.sync();
      assert.equal(report.uploaded, 1);
      assert.equal(await alice.db.pendingChanges(), 0);
      await pat.engine.sync();
      const seen = await pat.db.find("Field.WorkOrder", pump.id);
      assert.equal(seen?.values["Notes"], "the pump is noisy");
      assert.equal(seen?.values["Status"], "InProgress");

      const gone = await site(pat.db, "Gone soon");
      await pat.engine.sync();
      await alice.engine.sync();
      assert.notEqual(await alice.db.find("Field.Site", gone.id), null);
      assert.equal(await pat.db.delete(gone), "recorded", "the server knows it: the deletion waits for upload");
      assert.deepEqual(await pat.db.pendingObjects(), [{ entity: "Field.Site", id: gone.id, kind: "delete", members: [] }]);
      assert.equal((await pat.engine.sync()).uploaded, 1);
      const removed = await alice.engine.sync();
      assert.equal(removed.removed["Field.Site"], 1);
      assert.equal(await alice.db.find("Field.Site", gone.id), null);
    });

    test("a change the server rejects is reported with its reason, and the server's state comes back", async () => {
      const pat = await device("pat");
      const alice = await device("alice");
      const pump = await order(pat.db, { WorkOrder_AssignedTo: alice.user });
      await pat.engine.sync();
      await alice.engine.sync();
      const mine = await alice.db.find("Field.WorkOrder", pump.id);
      assert.ok(mine);
      alice.db.set(mine, "Title", "A technician may not retitle");
      await alice.db.commit(mine);
      const report = await alice.engine.sync();
      assert.equal(report.uploaded, 0);
      assert.equal(report.rejected.length, 1);
      assert.equal(report.rejected[0]?.entity, "Field.WorkOrder");
      assert.equal(report.rejected[0]?.id, pump.id);
      assert.match(report.rejected[0]?.reason ?? "", /Title|write|not allowed/i);
      const back = await alice.db.find("Field.WorkOrder", pump.id);
      assert.equal(back?.values["Title"], pump.values["Title"], "the server's title is back on the device");
      assert.equal(await alice.db.pendingChanges(), 0);

      // A duplicate of a unique number: the new object never reached the server and leaves the device.
      const copy = pat.db.create("Field.WorkOrder");
      pat.db.set(copy, "Number", pump.values["Number"]);
      pat.db.set(copy, "Title", "A copy");
      await pat.db.commit(copy);
      const duplicate = await pat.engine.sync();
      assert.deepEqual(
        duplicate.rejected.map((r) => r.id),
        [copy.id],
      );
      assert.match(duplicate.rejected[0]?.reason ?? "", /Number|unique/i);
      assert.equal(await pat.db.find("Field.WorkOrder", copy.id), null);
    });

    test("unsynchronized mode uploads everything and downloads only the rejected objects' state", async () => {
      const pat = await device("pat");
      const alice = await device("alice");
      const pump = await order(pat.db, { WorkOrder_AssignedTo: alice.user });
      await pat.engine.sync();
      await alice.engine.sync();
      const elsewhere = await site(pat.db, "Only in a full sync");
      await pat.engine.sync();

      const mine = await alice.db.find("Field.WorkOrder", pump.id);
      assert.ok(mine);
      alice.db.set(mine, "Title", "Rejected");
      await alice.db.commit(mine);
      const feedback = alice.db.create("Field.Feedback");
      alice.db.set(feedback, "Message", "all good");
      await alice.db.commit(feedback);
      const report = await alice.engine.sync({ mode: "unsynchronized" });
      assert.equal(report.uploaded, 1, "the feedback went up");
      assert.deepEqual(report.rejected.map((r) => r.id), [pump.id]);
      assert.equal((await alice.db.find("Field.WorkOrder", pump.id))?.values["Title"], pump.values["Title"]);
      assert.equal(await alice.db.find("Field.Site", elsewhere.id), null, "nothing else came down");
      assert.equal((await alice.db.status()).lastSync?.mode, "unsynchronized");
    });

    test("selected mode sends only the selected changes and fetches selected objects", async () => {
      const pat = await freshDevice("paula");
      const first = await site(pat.db, "Selected");
      const second = await site(pat.db, "Not selected");
      const draft = pat.db.create("Field.Site");
      const report = await pat.engine.sync({ mode: "selected", objects: [first, draft] });
      assert.equal(report.uploaded, 1);
      assert.deepEqual((await pat.db.pendingObjects()).map((p) => p.id), [second.id]);

      const other = await freshDevice("paula");
      const fetched = await other.engine.sync({ mode: "selected", objects: [{ entity: "Field.Site", id: first.id }] });
      assert.equal(fetched.uploaded, 0);
      assert.equal((await other.db.find("Field.Site", first.id))?.values["Name"], "Selected");
      assert.equal(await other.db.find("Field.Site", second.id), null);
      await refused(() => pat.engine.sync({ mode: "selected" }), "invalid-argument", "`objects`");
      await refused(() => pat.engine.sync({ mode: "all", objects: [first] }), "invalid-argument", "`objects`");
      await refused(() => pat.engine.sync({ mode: "sideways" as "all" }), "invalid-argument", "`mode`");
      await refused(() => pat.engine.sync({ mode: "selected", objects: [{ entity: "Field.Site", id: "nope" }] }), "invalid-argument", "`nope`");
    });

    test("progress tells each phase as it goes", async () => {
      const pat = await device("pat");
      await site(pat.db, "Progress 1");
      await site(pat.db, "Progress 2");
      const seen: Progress[] = [];
      await pat.engine.sync({ onProgress: (progress) => seen.push(progress) });
      const upload = seen.filter((p) => p.phase === "upload");
      assert.ok(upload.length >= 2, JSON.stringify(seen));
      assert.equal(upload.at(-1)?.objectsDone, 2);
      assert.equal(upload.at(-1)?.objectsTotal, 2);
      assert.ok((upload.at(-1)?.bytesTotal ?? 0) > 0);
      const downloaded = new Set(seen.filter((p) => p.phase === "download").map((p) => p.entity));
      assert.ok(downloaded.has("Field.Site") && downloaded.has("Field.WorkOrder"), JSON.stringify([...downloaded]));
      assert.ok(seen.findIndex((p) => p.phase === "download") > seen.findIndex((p) => p.phase === "upload"));
    });

    test("a cancelled sync leaves no half phase: before the upload nothing goes, during the download nothing stays", async () => {
      const pat = await device("pat");
      const kept = await site(pat.db, "Cancelled before");
      const early = new AbortController();
      early.abort();
      await refused(() => pat.engine.sync({ signal: early.signal }), "cancelled");
      assert.equal(await pat.db.pendingChanges(), 1, "the change waits for the next sync");
      const witness = await freshDevice("paula");
      await witness.engine.sync();
      assert.equal(await witness.db.find("Field.Site", kept.id), null, "nothing reached the server");
      await pat.engine.sync();

      const bob = await freshDevice("carl");
      const feedback = bob.db.create("Field.Feedback");
      bob.db.set(feedback, "Message", "sent before the cancel");
      await bob.db.commit(feedback);
      const during = new AbortController();
      const cancelled = await refused(
        () => bob.engine.sync({ signal: during.signal, onProgress: (p) => p.phase === "download" && during.abort() }),
        "cancelled",
      );
      assert.match(cancelled.message, /cancelled/);
      assert.equal(await bob.db.pendingChanges(), 0, "the upload was answered and applied");
      assert.deepEqual(await bob.db.query("Field.Site"), [], "nothing of the download was kept");
      assert.equal((await bob.db.status()).fullSyncDue, "first-sync", "no checkpoint was kept either");
      await bob.engine.sync();
      assert.notEqual(await bob.db.find("Field.Site", kept.id), null, "the next sync brings it all");
    });

    test("a server action synchronises objects to the device", async () => {
      const pat = await device("pat");
      const alice = await device("alice");
      const closed = await order(pat.db, { WorkOrder_AssignedTo: alice.user, Status: "Closed", DueDate: "2020-01-01T00:00:00Z" });
      await pat.engine.sync();
      await alice.engine.sync();
      assert.equal(await alice.db.find("Field.WorkOrder", closed.id), null, "old closed orders are not in a full sync");
      const outcome = await alice.engine.callAction("MyWorkOrdersIn", { Status: "Closed" });
      assert.ok(outcome.synced >= 1, JSON.stringify(outcome));
      assert.equal((await alice.db.find("Field.WorkOrder", closed.id))?.values["Status"], "Closed");
      await refused(() => alice.engine.callAction("NoSuchAction", {}), "server");
      await refused(() => alice.engine.callAction("MyWorkOrdersIn", { Status: closed }), "invalid-argument", "`Status`", "pass its id");
    });

    test("a photo attached on one device is read on another", async () => {
      const pat = await device("pat");
      const alice = await device("alice");
      const pump = await order(pat.db, { WorkOrder_AssignedTo: alice.user });
      await pat.engine.sync();
      await alice.engine.sync();
      const visit = alice.db.create("Field.Visit");
      alice.db.set(visit, "StartedAt", new Date());
      alice.db.set(visit, "Visit_WorkOrder", pump.id);
      alice.db.set(visit, "Visit_Technician", alice.user);
      const photo = alice.db.create("Field.Photo");
      alice.db.set(photo, "Photo_Visit", visit);
      const content = "a photo of the new seal ".repeat(2000);
      await alice.db.attachFile(photo, new Blob([content], { type: "image/jpeg" }), "seal.jpg");
      await alice.db.commit([visit, photo]);
      const up = await alice.engine.sync();
      assert.equal(up.filesUploaded, 1);
      assert.equal(up.uploaded, 2);

      const down = await pat.engine.sync({ mode: "selected", objects: [{ entity: "Field.Photo", id: photo.id }] });
      assert.equal(down.filesDownloaded, 1);
      const held = await pat.db.find("Field.Photo", photo.id);
      assert.ok(held);
      assert.equal(held.values["FileName"], "seal.jpg");
      assert.equal(await (await pat.db.readFile(held))?.text(), content);
      const again = await pat.engine.sync({ mode: "selected", objects: [held] });
      assert.equal(again.filesDownloaded, 0, "a content already on the device is not fetched again");
    });

    test("a failure to remove unreferenced contents after a sync goes to onError or the console, and the report stands", async () => {
      // A device whose file store cannot list what it holds, as an unreadable OPFS folder.
      const unlistable: Storage = {
        description: "memory, with a file store that cannot be listed",
        async open(context) {
          const inner = await memoryStorage().open(context);
          const files = inner.files;
          return {
            ...inner,
            files: {
              has: (hash) => files.has(hash),
              get: (hash) => files.get(hash),
              put: (hash, content) => files.put(hash, content),
              held: async () => {
                throw new DOMException("the folder cannot be read", "NotReadableError");
              },
              remove: async () => {},
            },
          };
        },
      };
      const db = await openDatabase({ model: MODEL, storage: unlistable });
      const errors: FerryError[] = [];
      const engine = new SyncEngine(db, { server: server.url, onError: (error) => errors.push(error) });
      await engine.signIn("erin", PASSWORD);
      await engine.sync();
      assert.equal(errors.length, 1, "each completed sync tells its failed collection");
      const [failure] = errors;
      assert.ok(failure instanceof FerryError);
      assert.equal(failure.kind, "storage");
      assert.match(failure.message, /collectFiles/);
      assert.match(failure.message, /the folder cannot be read/);

      await site(db, "Unlistable depot");
      const report = await engine.sync({ mode: "unsynchronized" });
      assert.equal(report.uploaded, 1, "the sync did its work");
      assert.deepEqual(report.rejected, []);
      assert.equal(await db.pendingChanges(), 0);
      assert.equal(errors.length, 2);

      // Without onError the console is warned, naming the call.
      const plain = new SyncEngine(db, { server: server.url });
      const warn = mock.method(console, "warn", () => {});
      let again: SyncReport;
      try {
        again = await plain.sync({ mode: "unsynchronized" });
      } finally {
        warn.mock.restore();
      }
      assert.equal(again.uploaded, 0);
      assert.equal(warn.mock.callCount(), 1);
      assert.match(String(warn.mock.calls[0]?.arguments[0]), /^Ferry: collectFiles after a sync failed.*the folder cannot be read/);
      assert.equal(errors.length, 2, "another engine's onError is not told");

      // An onError that throws does not fail the sync either.
      const throwing = new SyncEngine(db, {
        server: server.url,
        onError: () => {
          throw new Error("the app's handler broke");
        },
      });
      const warnAgain = mock.method(console, "warn", () => {});
      try {
        assert.equal((await throwing.sync({ mode: "unsynchronized" })).uploaded, 0);
      } finally {
        warnAgain.mock.restore();
      }
      assert.match(String(warnAgain.mock.calls[0]?.arguments[0]), /onError failed: the app's handler broke/);
      assert.throws(
        () => new SyncEngine(db, { server: server.url, onError: "log" as never }),
        (error: unknown) => error instanceof FerryError && error.kind === "invalid-argument" && error.message.includes("`onError`"),
      );
      await db.close();
    });

    test("live mode wakes a device after another device's sync", async () => {
      const pat = await device("pat");
      const bob = await device("bob");
      await bob.engine.sync();
      const states: string[] = [];
      const reports: SyncReport[] = [];
      const errors: FerryError[] = [];
      bob.engine.startLive({ onState: (state) => states.push(state), onSync: (report) => reports.push(report), onError: (error) => errors.push(error) });
      assert.equal(bob.engine.isLive, true);
      await eventually("live mode connects", () => states.includes("connected"));
      await eventually("the first live sync completes", () => reports.length >= 1);
      const news = await site(pat.db, "News");
      await pat.engine.sync();
      await eventually("the hint brings the new site", async () => (await bob.db.find("Field.Site", news.id)) !== null);
      const feedback = bob.db.create("Field.Feedback");
      bob.db.set(feedback, "Message", "sent by live mode");
      const before = reports.length;
      await bob.db.commit(feedback);
      await eventually("a local commit is synced by itself", () => reports.slice(before).some((report) => report.uploaded === 1));
      assert.equal(await bob.db.pendingChanges(), 0);
      await bob.engine.stopLive();
      assert.equal(bob.engine.isLive, false);
      assert.deepEqual(errors, []);
    });
  });
}

describe("servers that cannot be used", () => {
  test("an address that is not a server's is refused; a server that does not answer is unreachable", async () => {
    const db = await memoryDatabase();
    assert.throws(() => new SyncEngine(db, { server: "http://example.com" }), (error: unknown) => error instanceof FerryError && error.kind === "bad-server");
    assert.throws(() => new SyncEngine(db, { server: "ftp://127.0.0.1" }), (error: unknown) => error instanceof FerryError && error.kind === "bad-server");
    const engine = new SyncEngine(db, { server: "http://127.0.0.1:9/ferry/" });
    assert.equal(engine.server, "http://127.0.0.1:9/ferry");
    await refused(() => engine.signIn("pat", PASSWORD), "unreachable", "127.0.0.1:9");
    assert.equal((await db.status()).user, null);
    await db.close();
  });
});
