/**
 * A download larger than the SDK keeps in memory (DOWNLOAD_BUFFERED_OBJECTS_MAX objects): its
 * transaction opens part way and the rest is written as it comes, the app's calls wait for it,
 * and a cancellation still rolls all of it back. The table's indexes, which a download into an
 * empty table drops and makes again, are there after either.
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";

import { DOWNLOAD_BUFFERED_OBJECTS_MAX, FerryError, SyncEngine } from "@ferry/sdk";
import type { SqlConnection } from "@ferry/sdk";

import { PASSWORD, inspectedDatabase, memoryDatabase, startServer } from "./harness.js";

/** The indexes of a table, as the database keeps them. */
function indexes(connection: SqlConnection, table: string): unknown[][] {
  return connection.all("SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 ORDER BY name", [table]);
}
import type { TestServer } from "./harness.js";

describe("a download larger than is kept in memory", () => {
  let server: TestServer;
  const count = DOWNLOAD_BUFFERED_OBJECTS_MAX + 500;

  before(async () => {
    server = await startServer("sqlite", [
      { name: "pat", role: "Planner" },
      { name: "paula", role: "Planner" },
    ]);
    const db = await memoryDatabase();
    const engine = new SyncEngine(db, { server: server.url });
    await engine.signIn("pat", PASSWORD);
    const sites = [];
    for (let n = 0; n < count; n++) {
      const site = db.create("Field.Site");
      db.set(site, "Name", `Site ${n}`);
      sites.push(site);
    }
    await db.commit(sites);
    assert.equal((await engine.sync()).uploaded, count);
    await db.close();
  });

  after(async () => {
    await server.stop();
  });

  test("is cancelled whole, then arrives whole while the app's calls wait for it", async () => {
    const { db, connection } = await inspectedDatabase();
    const made = indexes(connection, "Field.Site");
    assert.ok(made.length >= 2, "the schema indexes a site's associations");
    const engine = new SyncEngine(db, { server: server.url });
    await engine.signIn("paula", PASSWORD);
    const controller = new AbortController();
    let cancelledAt = 0;
    const cancelled = engine.sync({
      signal: controller.signal,
      onProgress: (progress) => {
        // Past the objects kept in memory: the transaction is open when the cancel comes.
        if (progress.entity === "Field.Site" && progress.objectsDone > DOWNLOAD_BUFFERED_OBJECTS_MAX && cancelledAt === 0) {
          cancelledAt = progress.objectsDone;
          controller.abort();
        }
      },
    });
    await assert.rejects(cancelled, (error: unknown) => error instanceof FerryError && error.kind === "cancelled");
    assert.ok(cancelledAt > DOWNLOAD_BUFFERED_OBJECTS_MAX, `cancelled at ${cancelledAt}`);
    assert.equal((await db.query("Field.Site", null, { limit: 1 })).length, 0, "nothing of the cancelled download stayed");
    assert.deepEqual(indexes(connection, "Field.Site"), made, "the indexes dropped for the download are back");

    const syncing = engine.sync();
    let queried = -1;
    const reading = (async () => {
      // Called while the download runs: answered from the state before it, or after it, never between.
      await new Promise((resolve) => setTimeout(resolve, 200));
      queried = (await db.query("Field.Site")).length;
    })();
    const report = await syncing;
    await reading;
    assert.equal(report.downloaded["Field.Site"], count);
    assert.ok(queried === 0 || queried === count, `a read during the download saw ${queried} sites`);
    assert.equal((await db.query("Field.Site")).length, count);
    assert.deepEqual(indexes(connection, "Field.Site"), made, "the indexes were made again");
    assert.deepEqual(connection.all("PRAGMA integrity_check"), [["ok"]], "and hold every row");
    assert.deepEqual(
      connection.all('SELECT count(*) FROM "Field.Site" INDEXED BY "ix:Field.Site_City" WHERE "Field.Site_City" IS NULL'),
      [[count]],
      "a query through an index finds every object",
    );
    await db.close();
  });
});
