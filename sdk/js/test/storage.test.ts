/**
 * The SQLite connection the storages share: every kind of value is bound and read back as
 * sqlite-wasm's own `oo1` API binds and reads it (the connection goes through SQLite's
 * exported functions instead, for speed), statements fail with SQLite's message and stay
 * usable, many rows of mixed values bind without harm; and what the storages refuse.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import sqlite3InitModule from "@sqlite.org/sqlite-wasm";
import type { Sqlite3Static } from "@sqlite.org/sqlite-wasm";

import { FerryError, memoryStorage, opfsStorage, removeOpfsDatabase } from "@ferry/sdk";
import type { SqlConnection, SqlValue } from "@ferry/sdk";

import { memoryDatabase } from "./harness.js";

const sqlite3: Sqlite3Static = await (sqlite3InitModule as unknown as (options: object) => Promise<Sqlite3Static>)({
  print: () => {},
  printErr: () => {},
});

/** A connection of the memory storage, on its own database. */
async function connection(): Promise<SqlConnection> {
  const opened = await memoryStorage().open({ sqlite: async () => sqlite3 });
  return opened.connection;
}

/** Values of every kind a caller may bind, the edges of each included. */
const VALUES: unknown[] = [
  null,
  undefined,
  0,
  -1,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31) - 1,
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  2 ** 60,
  1.5,
  -0.25,
  2n ** 62n,
  -(2n ** 63n),
  2n ** 63n - 1n,
  true,
  false,
  "",
  "plain text",
  "héllo wörld ✓ 😀",
  "a".repeat(300),
  "é".repeat(300),
  "😀".repeat(200),
  new Uint8Array(0),
  new Uint8Array([0, 1, 2, 255]),
  new Uint8Array(5000).map((_, i) => i % 251),
];

describe("the SQLite connection", () => {
  test("binds and reads back every kind of value as sqlite-wasm's oo1 API does", async () => {
    const ours = await connection();
    const theirs = new sqlite3.oo1.DB(":memory:", "c");
    for (const run of [(sql: string) => ours.exec(sql), (sql: string) => theirs.exec(sql)]) run("CREATE TABLE t (n INTEGER PRIMARY KEY, v)");
    VALUES.forEach((value, n) => {
      ours.run("INSERT INTO t (n, v) VALUES (?1, ?2)", [n, value as SqlValue]);
      theirs.exec({ sql: "INSERT INTO t (n, v) VALUES (?1, ?2)", bind: [n, value as SqlValue] });
    });
    const read = ours.all("SELECT n, typeof(v), v FROM t ORDER BY n");
    const expected = theirs.selectArrays("SELECT n, typeof(v), v FROM t ORDER BY n");
    assert.equal(read.length, VALUES.length);
    assert.deepEqual(read, expected);
    // Each row reads back through this connection as oo1 reads the rows the other wrote.
    const again = ours.all("SELECT v FROM t WHERE n = ?1", [VALUES.indexOf("héllo wörld ✓ 😀")]);
    assert.deepEqual(again, [["héllo wörld ✓ 😀"]]);
    assert.deepEqual(ours.all("SELECT v FROM t WHERE n = ?1", [VALUES.indexOf(2n ** 62n)]), [[2n ** 62n]], "an integer beyond 2^53 reads back as a bigint");
    assert.deepEqual(ours.all("SELECT v FROM t WHERE n = ?1", [VALUES.indexOf(Number.MAX_SAFE_INTEGER)]), [[Number.MAX_SAFE_INTEGER]]);
    // A text with a NUL in it reads back whole, as the Rust SDK reads it (oo1 stops at the NUL).
    ours.run("INSERT INTO t (n, v) VALUES (?1, ?2)", [-1, "nul\u0000inside"]);
    assert.deepEqual(ours.all("SELECT v, length(CAST(v AS BLOB)) FROM t WHERE n = -1"), [["nul\u0000inside", 10]]);
    theirs.close();
  });

  test("gives the rows a statement changed, and reads many rows and columns", async () => {
    const db = await connection();
    db.exec("CREATE TABLE t (a, b, c)");
    for (let i = 0; i < 50; i++) assert.equal(db.run("INSERT INTO t VALUES (?1, ?2, ?3)", [i, `text ${i}`, new Uint8Array([i])]), 1);
    assert.equal(db.run("UPDATE t SET a = a + 1 WHERE a < ?1", [10]), 10);
    const rows = db.all("SELECT a, b, c FROM t ORDER BY b");
    assert.equal(rows.length, 50);
    assert.deepEqual(rows[0], [1, "text 0", new Uint8Array([0])]);
    assert.deepEqual(db.all("SELECT count(*) FROM t WHERE c = ?1", [new Uint8Array([7])]), [[1]]);
  });

  test("a failing statement throws SQLite's message and can run again", async () => {
    const db = await connection();
    db.exec("CREATE TABLE t (k TEXT PRIMARY KEY, v)");
    db.run("INSERT INTO t VALUES (?1, ?2)", ["one", 1]);
    assert.throws(() => db.run("INSERT INTO t VALUES (?1, ?2)", ["one", 2]), /UNIQUE constraint failed: t\.k/);
    assert.equal(db.run("INSERT INTO t VALUES (?1, ?2)", ["two", 2]), 1);
    assert.throws(() => db.run("INSERT INTO t VALUES (?1, ?2)", ["three", 3, 4]), /a statement with 2 parameters was given 3 values/);
    assert.throws(() => db.run("INSERT INTO t VALUES (?1, ?2)", ["three", {} as unknown as SqlValue]), /parameter 2 is a object, which SQLite cannot store/);
    assert.throws(() => db.run("INSERT INTO t VALUES (?1, ?2)", ["three", 2n ** 64n]), /too big to store/);
    // None of the refused calls left a value bound: the statement binds afresh.
    assert.equal(db.run("INSERT INTO t VALUES (?1, ?2)", ["three", 3]), 1);
    assert.deepEqual(db.all("SELECT k, v FROM t ORDER BY v"), [["one", 1], ["two", 2], ["three", 3]]);
    // A statement given fewer values than it has parameters binds the rest as NULL, not what an earlier run bound.
    db.run("INSERT INTO t VALUES (?1, ?2)", ["four"]);
    assert.deepEqual(db.all("SELECT v FROM t WHERE k = ?1", ["four"]), [[null]]);
  });

  test("binds many rows of blobs, numbers and texts without harm", async () => {
    // Node 20's V8 crashed the process on this when its optimised code called SQLite's
    // exported functions directly; the connection calls them so that V8 cannot inline them.
    const db = await connection();
    db.exec("CREATE TABLE t (id BLOB PRIMARY KEY, n INTEGER, title TEXT, due INTEGER, note TEXT) WITHOUT ROWID");
    db.exec("BEGIN");
    const rows = 30_000;
    for (let i = 0; i < rows; i++) {
      const id = new Uint8Array(16);
      new DataView(id.buffer).setUint32(12, i);
      db.run("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5)", [id, i, `Work order ${i}`, 1_795_939_200_000_000 + i, i % 3 === 0 ? null : `Note ${i}`]);
      if (i % 7 === 0) db.all("SELECT n, title FROM t WHERE id = ?1", [id]);
    }
    db.exec("COMMIT");
    assert.deepEqual(db.all("SELECT count(*), sum(n), max(due) FROM t"), [[rows, (rows * (rows - 1)) / 2, 1_795_939_200_000_000 + rows - 1]]);
  });
});

describe("object ids", () => {
  test("an id is found whatever the case of its hex digits, and text that is none is refused", async () => {
    const db = await memoryDatabase();
    const site = db.create("Field.Site");
    db.set(site, "Name", "Depot");
    await db.commit(site);
    assert.equal((await db.find("Field.Site", site.id.toUpperCase()))?.id, site.id);
    const stored = JSON.parse(db.core.storedId(site.id)) as { blob: string };
    assert.equal(stored.blob, site.id.replace(/-/g, ""), "the core stores the id's 16 bytes, as the SDK binds them");
    await assert.rejects(() => db.find("Field.Site", "not-an-id"), (error: unknown) => error instanceof FerryError && error.message.includes("not-an-id"));
    await assert.rejects(
      () => db.find("Field.Site", "0000000g-0000-0000-0000-000000000000"),
      (error: unknown) => error instanceof FerryError && error.message.includes("0000000g"),
    );
    await db.close();
  });
});

describe("OPFS databases", () => {
  test("are refused outside a Worker, and bad names and options are refused by name", async () => {
    await assert.rejects(() => removeOpfsDatabase("field"), (error: unknown) => error instanceof FerryError && error.kind === "storage" && /dedicated Worker/.test(error.message));
    await assert.rejects(
      () => removeOpfsDatabase("../field"),
      (error: unknown) => error instanceof FerryError && error.kind === "invalid-argument" && error.message.includes("`../field` is not a database name: removeOpfsDatabase"),
    );
    await assert.rejects(
      () => removeOpfsDatabase("field", { wasm: {}, colour: "red" } as never),
      (error: unknown) => error instanceof FerryError && error.kind === "invalid-argument" && error.message.includes("no option `colour`"),
    );
    assert.throws(() => opfsStorage(".hidden"), (error: unknown) => error instanceof FerryError && error.message.includes("opfsStorage takes"));
  });
});
