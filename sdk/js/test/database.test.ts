/**
 * The database API on memory storage: objects made, changed, committed, rolled back and
 * deleted; type and validation errors; queries; watches; file contents; clear; status.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { FerryError, fileStorage, memoryStorage, openDatabase } from "@ferry/sdk";
import type { Database, FerryObject } from "@ferry/sdk";

import { MODEL, memoryDatabase } from "./harness.js";

/** Asserts that `call` fails with a FerryError of `kind` whose message contains every `part`. */
async function refused(call: () => unknown, kind: string, ...parts: string[]): Promise<FerryError> {
  let caught: unknown;
  try {
    await call();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof FerryError, `expected a FerryError, got ${String(caught)}`);
  assert.equal(caught.kind, kind, caught.message);
  for (const part of parts) assert.ok(caught.message.includes(part), `${JSON.stringify(caught.message)} lacks ${JSON.stringify(part)}`);
  return caught;
}

async function site(db: Database, name: string): Promise<FerryObject> {
  const made = db.create("Field.Site");
  db.set(made, "Name", name);
  await db.commit(made);
  return made;
}

async function order(db: Database, number: number, title: string, fields: Record<string, unknown> = {}): Promise<FerryObject> {
  const made = db.create("Field.WorkOrder");
  db.set(made, "Number", number);
  db.set(made, "Title", title);
  for (const [member, value] of Object.entries(fields)) db.set(made, member, value);
  await db.commit(made);
  return made;
}

describe("objects", () => {
  test("a new object has the model's defaults and a fresh id, and is not committed", async () => {
    const db = await memoryDatabase();
    const first = db.create("Field.WorkOrder");
    const second = db.create("Field.WorkOrder");
    assert.equal(first.values["Status"], "Open");
    assert.equal(first.values["Priority"], 3);
    assert.equal(first.values["Amount"], "0.00");
    assert.equal(first.values["Title"], null);
    assert.equal(first.committed, null);
    assert.match(first.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.notEqual(first.id, second.id);
    assert.equal(await db.pendingChanges(), 0, "nothing is written before a commit");
    await db.close();
  });

  test("unknown and system entities are refused by name", async () => {
    const db = await memoryDatabase();
    await refused(() => db.create("Field.Nope"), "unknown-entity", "`Field.Nope`");
    await refused(() => db.create("System.User"), "unknown-entity", "`System.User`");
    await refused(() => db.query("Field.Nope"), "unknown-entity", "`Field.Nope`");
    await db.close();
  });

  test("set checks each value against its member's type and names the member", async () => {
    const db = await memoryDatabase();
    const made = db.create("Field.WorkOrder");
    const error = await refused(() => db.set(made, "Priority", "high"), "wrong-type", "`Priority`", "`Field.WorkOrder`");
    assert.equal(error.member, "Priority");
    await refused(() => db.set(made, "Status", "Sleeping"), "wrong-type", "`Status`");
    await refused(() => db.set(made, "Amount", "1.234"), "wrong-type", "`Amount`");
    await refused(() => db.set(made, "Colour", "red"), "unknown-member", "`Colour`", "`Field.WorkOrder`");
    await refused(() => db.set(made, "Title", undefined), "wrong-type", "`Title`");
    await refused(() => db.set(made, "Title", { nested: true }), "wrong-type", "`Title`");
    assert.equal(made.values["Priority"], 3, "a refused value changes nothing");

    db.set(made, "Amount", "12.5");
    assert.equal(db.get(made, "Amount"), "12.50", "a decimal is kept at its scale");
    db.set(made, "DueDate", new Date("2026-11-23T10:00:00Z"));
    assert.equal(db.get(made, "DueDate"), "2026-11-23T10:00:00Z");
    const depot = await site(db, "Depot");
    db.set(made, "WorkOrder_Site", depot);
    assert.equal(db.get(made, "Field.WorkOrder_Site"), depot.id, "an association answers to its short name too");
    await refused(() => db.set(made, "WorkOrder_Site", made), "wrong-type", "`Field.WorkOrder_Site`", "`Field.Site`");
    await refused(() => db.set(made, "WorkOrder_Site", "not an id"), "wrong-type", "`Field.WorkOrder_Site`");
    await refused(() => db.get(made, "Colour"), "unknown-member", "`Colour`");
    await refused(() => db.set({ id: "x" } as unknown as FerryObject, "Title", "x"), "invalid-argument", "set");
    await db.close();
  });

  test("a commit writes the objects and records what is dirty, all or none", async () => {
    const db = await memoryDatabase();
    const depot = await site(db, "Depot");
    let pending = await db.pendingObjects();
    assert.deepEqual(pending, [{ entity: "Field.Site", id: depot.id, kind: "create", members: ["Address", "Name", "Field.Site_City", "Field.Site_Customer"] }]);
    assert.deepEqual(depot.committed, depot.values);

    const found = await db.find("Field.Site", depot.id);
    assert.equal(found?.values["Name"], "Depot");
    db.set(depot, "Address", "Main 1");
    await db.commit(depot);
    pending = await db.pendingObjects();
    assert.equal(pending[0]?.kind, "create", "a change to a new object stays a creation");

    const good = db.create("Field.Site");
    db.set(good, "Name", "North");
    const bad = db.create("Field.WorkOrder"); // no Number, no Title: required
    await refused(() => db.commit([good, bad]), "validation", "`Number` is required", bad.id);
    assert.equal(await db.find("Field.Site", good.id), null, "the valid object of a refused commit is not written either");
    assert.equal(good.committed, null);
    assert.equal(await db.pendingChanges(), 1);
    await db.close();
  });

  test("validation rules name the rule broken: range, length, pattern", async () => {
    const db = await memoryDatabase();
    const made = db.create("Field.WorkOrder");
    db.set(made, "Number", 1);
    db.set(made, "Title", "Pump");
    db.set(made, "Priority", 9);
    await refused(() => db.commit(made), "validation", "`Priority`");
    db.set(made, "Priority", 2);
    await db.commit(made);
    const country = db.create("Field.Country");
    db.set(country, "Code", "nl");
    db.set(country, "Name", "Netherlands");
    await refused(() => db.commit(country), "validation", "`Code`");
    await db.close();
  });

  test("rollback returns an object to its committed state, a new one to its defaults", async () => {
    const db = await memoryDatabase();
    const depot = await site(db, "Depot");
    db.set(depot, "Name", "Typo");
    db.rollback(depot);
    assert.equal(depot.values["Name"], "Depot");
    const made = db.create("Field.WorkOrder");
    db.set(made, "Priority", 1);
    db.rollback(made);
    assert.equal(made.values["Priority"], 3);
    await db.close();
  });

  test("deleting an object never committed discards it; one never uploaded leaves no trace", async () => {
    const db = await memoryDatabase();
    const draft = db.create("Field.Site");
    assert.equal(await db.delete(draft), "discarded");
    await refused(() => db.set(draft, "Name", "x"), "deleted", draft.id);
    const depot = await site(db, "Depot");
    const pump = await order(db, 1, "Pump", { WorkOrder_Site: depot.id });
    assert.equal(await db.delete(depot), "removed");
    assert.equal(await db.find("Field.Site", depot.id), null);
    const after = await db.find("Field.WorkOrder", pump.id);
    assert.equal(after?.values["Field.WorkOrder_Site"], null, "the reference is cleared, as the server clears it");
    assert.deepEqual((await db.pendingObjects()).map((p) => p.entity), ["Field.WorkOrder"]);
    await refused(() => db.commit(depot), "deleted", depot.id);
    await db.close();
  });

  test("delete behaviours of associations hold on the device: refuse and delete", async () => {
    const model = `
[roles.User]
[entities."Shop.Customer"]
attributes.Name = { type = "string" }
access = [{ role = "User", create = true, delete = true, read = ["*"], write = ["*"] }]
[entities."Shop.Order"]
attributes.Number = { type = "integer" }
associations.Order_Customer = { target = "Shop.Customer", on_delete = "refuse" }
access = [{ role = "User", create = true, delete = true, read = ["*"], write = ["*"] }]
[entities."Shop.Line"]
attributes.Item = { type = "string" }
associations.Line_Order = { target = "Shop.Order", on_delete = "delete" }
access = [{ role = "User", create = true, delete = true, read = ["*"], write = ["*"] }]
`;
    const db = await openDatabase({ model, storage: memoryStorage() });
    const customer = db.create("Shop.Customer");
    const sale = db.create("Shop.Order");
    db.set(sale, "Order_Customer", customer);
    const lines = [db.create("Shop.Line"), db.create("Shop.Line")];
    for (const line of lines) db.set(line, "Line_Order", sale);
    await db.commit([customer, sale, ...lines]);
    await refused(() => db.delete(customer), "delete-refused", "`Shop.Order`", "`Shop.Order_Customer`");
    assert.notEqual(await db.find("Shop.Customer", customer.id), null, "a refused deletion changes nothing");
    assert.equal(customer.deleted, false);
    assert.equal(await db.delete(sale), "removed");
    assert.deepEqual(await db.query("Shop.Line"), [], "the lines went with their order");
    assert.equal(await db.delete(customer), "removed");
    await db.close();
  });
});

describe("queries", () => {
  test("constraints, sorting, limits and offsets", async () => {
    const db = await memoryDatabase();
    const depot = await site(db, "Depot");
    for (let n = 1; n <= 5; n++) await order(db, n, n % 2 === 0 ? "Leak" : "Fuse", { Priority: n, WorkOrder_Site: n <= 2 ? depot : null });
    const numbers = (objects: FerryObject[]) => objects.map((o) => o.values["Number"]);
    assert.deepEqual(numbers(await db.query("Field.WorkOrder", "[Title = 'Leak']", { sort: [["Number", "asc"]] })), [2, 4]);
    assert.deepEqual(numbers(await db.query("Field.WorkOrder", null, { sort: [["Number", "desc"]], limit: 2 })), [5, 4]);
    assert.deepEqual(numbers(await db.query("Field.WorkOrder", "", { sort: [["Number", "asc"]], limit: 2, offset: 3 })), [4, 5]);
    assert.deepEqual(numbers(await db.query("Field.WorkOrder", "[Priority >= 3 and not(contains(Title, 'lea'))]", { sort: [["Number", "asc"]] })), [3, 5]);
    assert.deepEqual(numbers(await db.query("Field.WorkOrder", "[Field.WorkOrder_Site/Field.Site/Name = 'Depot']", { sort: [["Number", "asc"]] })), [1, 2]);
    assert.deepEqual(numbers(await db.query("Field.WorkOrder", "[Field.WorkOrder_Site = empty]", { sort: [["Number", "asc"]] })), [3, 4, 5]);
    await refused(() => db.query("Field.WorkOrder", "[Colour = 'red']"), "constraint", "`Colour`");
    await refused(() => db.query("Field.WorkOrder", "[Priority = 'high'"), "constraint", "[Priority");
    await refused(() => db.query("Field.WorkOrder", null, { sort: [["Colour", "asc"]] }), "constraint", "`Colour`");
    await refused(() => db.query("Field.WorkOrder", null, { sort: [["Number", "up" as "asc"]] }), "constraint", "`up`");
    await refused(() => db.query("Field.WorkOrder", null, { limit: -1 }), "invalid-argument", "`limit`");
    await refused(() => db.query("Field.WorkOrder", null, { top: 3 } as never), "invalid-argument", "`top`");
    await refused(() => db.find("Field.WorkOrder", "nope"), "invalid-argument", "`nope`");
    await db.close();
  });
});

describe("watches", () => {
  test("a watch gives the result now and after each change of it, and not otherwise", async () => {
    const db = await memoryDatabase();
    const seen: number[][] = [];
    let told = () => {};
    const watch = db.watch("Field.WorkOrder", "[Priority = 1]", { sort: [["Number", "asc"]] }, (objects) => {
      seen.push(objects.map((o) => Number(o.values["Number"])));
      told();
    });
    const next = () => new Promise<void>((resolve) => (told = resolve));
    await next();
    assert.deepEqual(seen, [[]]);
    let change = next();
    const urgent = await order(db, 1, "Pump", { Priority: 1 });
    await change;
    assert.deepEqual(seen.at(-1), [1]);
    await order(db, 2, "Valve", { Priority: 4 }); // outside the result: no call
    await site(db, "Depot"); // another entity: no call
    change = next();
    db.set(urgent, "Priority", 2);
    await db.commit(urgent);
    await change;
    assert.deepEqual(seen, [[], [1], []], "only the changes of the result were told");
    watch.close();
    await order(db, 3, "Fuse", { Priority: 1 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    assert.equal(seen.length, 3, "a closed watch is not called");
    await refused(() => db.watch("Field.WorkOrder", "[Nope = 1]", {}, () => {}), "constraint", "`Nope`");
    await db.close();
  });

  test("a watch with a path follows the other entity's changes", async () => {
    const db = await memoryDatabase();
    const depot = await site(db, "Depot");
    await order(db, 1, "Pump", { WorkOrder_Site: depot });
    const seen: number[] = [];
    let told = () => {};
    const watch = db.watch("Field.WorkOrder", "[Field.WorkOrder_Site/Field.Site/Name = 'North']", {}, (objects) => {
      seen.push(objects.length);
      told();
    });
    await new Promise<void>((resolve) => (told = resolve));
    const changed = new Promise<void>((resolve) => (told = resolve));
    db.set(depot, "Name", "North");
    await db.commit(depot);
    await changed;
    assert.deepEqual(seen, [0, 1]);
    watch.close();
    await db.close();
  });
});

describe("files", () => {
  test("a content attached goes to the file store and its object's members", async () => {
    const db = await memoryDatabase();
    const photo = db.create("Field.Photo");
    const bytes = new TextEncoder().encode("a photo of a pump");
    await db.attachFile(photo, new Blob([bytes]), "pump.jpg");
    assert.equal(photo.values["FileName"], "pump.jpg");
    assert.equal(photo.values["FileSize"], bytes.length);
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    assert.equal(photo.values["ContentHash"], [...digest].map((b) => b.toString(16).padStart(2, "0")).join(""));
    assert.match(String(photo.values["ContentChanged"]), /^\d{4}-\d\d-\d\dT/);
    await db.commit(photo);
    const stored = await db.find("Field.Photo", photo.id);
    assert.ok(stored);
    const content = await db.readFile(stored);
    assert.equal(await content?.text(), "a photo of a pump");
    assert.equal(await db.readFile(db.create("Field.Photo")), null, "no content: null");
    await refused(() => db.attachFile(db.create("Field.Site"), new Blob(["x"]), "x.txt"), "not-a-file-entity", "`Field.Site`");
    await refused(() => db.attachFile(photo, "text" as unknown as Blob, "x.txt"), "invalid-argument", "content");
    await refused(() => db.attachFile(photo, new Blob(["x"]), 7 as unknown as string), "invalid-argument", "name");
    assert.equal(photo.values["FileName"], "pump.jpg", "a refused attachment changes nothing");
    await db.attachFile(photo, new Blob(["x"]), "x".repeat(401));
    await refused(() => db.commit(photo), "validation", "`FileName`");
    await db.close();
  });

  for (const [name, open] of [
    ["memory", () => memoryDatabase()],
    ["a file", async () => openDatabase({ model: MODEL, storage: fileStorage(join(mkdtempSync(join(tmpdir(), "ferry-collect-")), "device.db")) })],
  ] as const) {
    test(`contents nothing refers to leave the file store (${name})`, async () => {
      const db = await open();
      const photo = db.create("Field.Photo");
      await db.attachFile(photo, new Blob(["the first photo"]), "a.jpg");
      await db.commit(photo);
      const first = String(photo.values["ContentHash"]);
      await db.attachFile(photo, new Blob(["a better photo"]), "a.jpg");
      await db.commit(photo);
      const draft = db.create("Field.Photo");
      await db.attachFile(draft, new Blob(["never committed"]), "b.jpg");
      assert.equal(await db.collectFiles(3_600_000), 0, "within the grace period nothing goes");
      assert.equal(await db.collectFiles(0), 2, "the replaced content and the uncommitted one");
      assert.equal(await (await db.readFile(photo))?.text(), "a better photo");
      assert.equal(await db.readFile(draft), null);
      assert.equal(await db.readFile({ ...photo, values: { ...photo.values, ContentHash: first } }), null);
      await refused(() => db.collectFiles(-1), "invalid-argument", "grace");
      await db.close();
    });
  }
});

describe("the device", () => {
  test("clear empties an entity on the device, refusing to lose changes unless told", async () => {
    const db = await memoryDatabase();
    await site(db, "Depot");
    await refused(() => db.clear("Field.Site"), "unsynced-changes", "`Field.Site`", "1 objects");
    assert.equal((await db.query("Field.Site")).length, 1);
    assert.equal(await db.clear("Field.Site", { discardChanges: true }), 1);
    assert.equal((await db.query("Field.Site")).length, 0);
    assert.equal(await db.pendingChanges(), 0);
    await db.close();
  });

  test("status tells what the device holds; a closed database refuses every call", async () => {
    const db = await memoryDatabase();
    await site(db, "Depot");
    const status = await db.status();
    assert.equal(status.pendingChanges, 1);
    assert.equal(status.user, null);
    assert.equal(status.fullSyncDue, "first-sync");
    assert.equal(status.modelVersion, db.core.version());
    await db.close();
    await refused(() => db.query("Field.Site"), "closed");
    await refused(() => db.create("Field.Site"), "closed");
  });

  test("a bad model or option is refused with what is wrong", async () => {
    await refused(() => openDatabase({ model: "entities = 3", storage: memoryStorage() }), "model", "model");
    await refused(() => openDatabase({ model: MODEL, storage: {} as never }), "invalid-argument", "`storage`");
    await refused(() => openDatabase({ model: MODEL, storage: memoryStorage(), colour: 1 } as never), "invalid-argument", "`colour`");
  });
});
