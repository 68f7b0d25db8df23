/**
 * A {@link SqlConnection} over sqlite-wasm's `oo1.DB`, with a small cache of prepared
 * statements (a download runs the same few statements for every object), and what the
 * storages built on it share: loading an image into an in-memory database, and a store of
 * file contents in memory.
 *
 * @module
 */

import type { Database as SqliteDatabase, PreparedStatement, Sqlite3Static } from "@sqlite.org/sqlite-wasm";

import type { FileStore, SqlConnection, SqlValue } from "../storage.js";

/** Prepared statements kept per connection; past this many the cache starts over. */
const STATEMENTS_CACHED_MAX = 64;

/** A connection to an open sqlite-wasm database. */
export class WasmConnection implements SqlConnection {
  readonly #db: SqliteDatabase;
  readonly #statements = new Map<string, PreparedStatement>();

  constructor(db: SqliteDatabase) {
    this.#db = db;
  }

  /** The database, for the storage that opened it. */
  get db(): SqliteDatabase {
    return this.#db;
  }

  run(sql: string, params: readonly SqlValue[] = []): number {
    const statement = this.#prepare(sql);
    try {
      if (params.length > 0) statement.bind(params as SqlValue[]);
      statement.step();
    } finally {
      statement.reset(true);
    }
    return Number(this.#db.changes());
  }

  all(sql: string, params: readonly SqlValue[] = []): SqlValue[][] {
    const statement = this.#prepare(sql);
    const rows: SqlValue[][] = [];
    try {
      if (params.length > 0) statement.bind(params as SqlValue[]);
      while (statement.step()) rows.push(statement.get([]) as SqlValue[]);
    } finally {
      statement.reset(true);
    }
    return rows;
  }

  exec(sql: string): void {
    this.#db.exec(sql);
  }

  /** Finalizes the cached statements and closes the database. */
  close(): void {
    for (const statement of this.#statements.values()) statement.finalize();
    this.#statements.clear();
    this.#db.close();
  }

  #prepare(sql: string): PreparedStatement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      if (this.#statements.size >= STATEMENTS_CACHED_MAX) {
        for (const cached of this.#statements.values()) cached.finalize();
        this.#statements.clear();
      }
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }
}

/**
 * Loads a database image (a SQLite file's bytes) into an in-memory database. A file the Rust
 * SDK wrote is in WAL mode, which an in-memory database cannot be: its header is set to the
 * rollback journal first (the pages are the same).
 */
export function loadImage(sqlite3: Sqlite3Static, db: SqliteDatabase, image: Uint8Array): void {
  const bytes = new Uint8Array(image);
  if (bytes.length >= 20 && bytes[18] === 2 && bytes[19] === 2) {
    bytes[18] = 1;
    bytes[19] = 1;
  }
  const pointer = sqlite3.wasm.allocFromTypedArray(bytes);
  const flags = sqlite3.capi.SQLITE_DESERIALIZE_FREEONCLOSE | sqlite3.capi.SQLITE_DESERIALIZE_RESIZEABLE;
  const rc = sqlite3.capi.sqlite3_deserialize(db, "main", pointer, bytes.length, bytes.length, flags);
  db.checkRc(rc);
}

/** File contents kept in memory, for databases that are. */
export class MemoryFiles implements FileStore {
  readonly #contents = new Map<string, Blob>();

  async has(hash: string): Promise<boolean> {
    return this.#contents.has(hash);
  }

  async get(hash: string): Promise<Blob | null> {
    return this.#contents.get(hash) ?? null;
  }

  async put(hash: string, content: Blob): Promise<void> {
    // A copy of the bytes: the app may go on changing what it handed over.
    this.#contents.set(hash, new Blob([await content.arrayBuffer()]));
  }
}
