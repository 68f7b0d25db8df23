/**
 * The SDK run behind a message channel, as a page runs it in a Worker: `serveWorker` on one
 * end (here on memory storage), `connectWorker` on the other, against a real server.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MessageChannel } from "node:worker_threads";

import { FerryError, connectWorker, memoryStorage } from "@ferry/sdk";
import type { FerryObject, MessageEndpoint, Progress } from "@ferry/sdk";
import { serveWorker } from "@ferry/sdk/worker";

import { MODEL, PASSWORD, eventually, startServer } from "./harness.js";
import type { TestServer } from "./harness.js";

describe("the SDK in a Worker, called from the page", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer("sqlite", [
      { name: "pat", role: "Planner" },
      { name: "bob", role: "Technician" },
    ]);
  });
  after(async () => {
    await server.stop();
  });

  async function connect() {
    const channel = new MessageChannel();
    serveWorker({ endpoint: channel.port1 as unknown as MessageEndpoint, storage: () => memoryStorage() });
    const connected = await connectWorker(channel.port2 as unknown as MessageEndpoint, { model: MODEL, storage: "field", server: server.url });
    return { ...connected, channel };
  }

  test("objects, queries, watches, files and syncs cross the channel", async () => {
    const { db, engine, channel } = await connect();
    const site = db.create("Field.Site");
    assert.throws(() => db.set(site, "Name", 5), (error: unknown) => error instanceof FerryError && error.kind === "wrong-type");
    db.set(site, "Name", "Depot");
    await db.commit(site);
    assert.deepEqual(site.committed, site.values);
    assert.equal((await db.find("Field.Site", site.id))?.values["Name"], "Depot");

    const invalid = db.create("Field.WorkOrder");
    await assert.rejects(db.commit(invalid), (error: unknown) => error instanceof FerryError && error.kind === "validation" && error.message.includes("`Number`"));
    assert.equal(invalid.committed, null);

    const seen: FerryObject[][] = [];
    const watch = db.watch("Field.Site", null, { sort: [["Name", "asc"]] }, (objects) => seen.push(objects));
    await eventually("the watch gives its first result", () => seen.length === 1);
    const north = db.create("Field.Site");
    db.set(north, "Name", "North");
    await db.commit(north);
    await eventually("the watch gives the new result", () => seen.length === 2);
    assert.deepEqual(seen[1]?.map((object) => object.values["Name"]), ["Depot", "North"]);
    watch.close();

    const photo = db.create("Field.Photo");
    await db.attachFile(photo, new Blob(["pixels"]), "a.jpg");
    assert.equal(photo.values["FileSize"], 6);
    await db.commit(photo);
    assert.equal(await (await db.readFile(photo))?.text(), "pixels");
    await db.delete(photo);
    assert.equal(photo.deleted, true);

    await engine.signIn("pat", PASSWORD);
    const progress: Progress[] = [];
    const report = await engine.sync({ onProgress: (p) => progress.push(p) });
    assert.equal(report.uploaded, 2);
    assert.ok(progress.some((p) => p.phase === "download"));
    assert.equal((await db.status()).pendingChanges, 0);

    const changed = db.create("Field.Site");
    db.set(changed, "Name", "Cancelled");
    await db.commit(changed);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(engine.sync({ signal: controller.signal }), (error: unknown) => error instanceof FerryError && error.kind === "cancelled");
    assert.equal(await db.pendingChanges(), 1);
    await db.close();
    channel.port1.close();
    channel.port2.close();
  });

  test("live mode's callbacks come to the page", async () => {
    const bob = await connect();
    const pat = await connect();
    await bob.engine.signIn("bob", PASSWORD);
    await pat.engine.signIn("pat", PASSWORD);
    const states: string[] = [];
    bob.engine.startLive({ onState: (state) => states.push(state) });
    await eventually("live mode connects", () => states.includes("connected"));
    const site = pat.db.create("Field.Site");
    pat.db.set(site, "Name", "Live");
    await pat.db.commit(site);
    await pat.engine.sync();
    await eventually("the site reaches bob", async () => (await bob.db.find("Field.Site", site.id)) !== null);
    await bob.engine.stopLive();
    await bob.db.close();
    await pat.db.close();
    for (const end of [bob, pat]) {
      end.channel.port1.close();
      end.channel.port2.close();
    }
  });
});
