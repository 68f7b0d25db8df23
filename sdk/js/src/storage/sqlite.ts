/**
 * A {@link SqlConnection} over sqlite-wasm's `oo1.DB`, with a small cache of prepared
 * statements (a download runs the same few statements for every object), and what the
 * storages built on it share: loading an image into an in-memory database, and a store of
 * file contents in memory.
 *
 * Statements bind their parameters and read their rows through SQLite's own functions as the
 * WebAssembly module exports them, not through `oo1`'s `bind` and `get`, which allocate and free
 * memory for every text and blob and check each call's arguments again: a download binds about
 * a dozen values per object, and binding through `oo1` took five times as long as SQLite's own
 * work. Texts and blobs are written into one buffer of the connection's, bound without a copy
 * (`SQLITE_STATIC`), and the bindings cleared once the statement has run. The values are those
 * `oo1` binds and reads: integers beyond 32 bits as 64-bit integers, other numbers as reals,
 * booleans as 0 or 1, `undefined` as NULL; integers read back as numbers when they fit in 2^53,
 * as `bigint`s otherwise.
 *
 * @module
 */

import type { Database as SqliteDatabase, PreparedStatement, Sqlite3Static } from "@sqlite.org/sqlite-wasm";

import type { FileStore, SqlConnection, SqlValue } from "../storage.js";

/** Prepared statements kept per connection; past this many the cache starts over. */
const STATEMENTS_CACHED_MAX = 64;

/** The first size of a connection's buffer for the texts and blobs of a statement's parameters. */
const BIND_BUFFER_BYTES_MIN = 64 * 1024;

/** Texts up to this long are tried as ASCII, copied a character at a time. */
const ASCII_COPIED_CHARS_MAX = 256;

/** SQLite's result codes and column types that reading rows needs. */
const SQLITE_ROW = 100;
const SQLITE_DONE = 101;
const SQLITE_INTEGER = 1;
const SQLITE_FLOAT = 2;
const SQLITE_TEXT = 3;
const SQLITE_BLOB = 4;

/** The 64-bit integers SQLite holds. */
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** The integers a number holds exactly, read back as numbers (others as `bigint`s). */
const SAFE_MIN = BigInt(Number.MIN_SAFE_INTEGER);
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** SQLite's functions as the WebAssembly module exports them (pointers are numbers). */
interface Exports {
  sqlite3_bind_null(statement: number, index: number): number;
  sqlite3_bind_int(statement: number, index: number, value: number): number;
  sqlite3_bind_int64(statement: number, index: number, value: bigint): number;
  sqlite3_bind_double(statement: number, index: number, value: number): number;
  sqlite3_bind_text(statement: number, index: number, text: number, bytes: number, destructor: number): number;
  sqlite3_bind_blob(statement: number, index: number, blob: number, bytes: number, destructor: number): number;
  sqlite3_bind_parameter_count(statement: number): number;
  sqlite3_clear_bindings(statement: number): number;
  sqlite3_step(statement: number): number;
  sqlite3_reset(statement: number): number;
  sqlite3_changes(db: number): number;
  sqlite3_column_count(statement: number): number;
  sqlite3_column_type(statement: number, column: number): number;
  sqlite3_column_int64(statement: number, column: number): bigint;
  sqlite3_column_double(statement: number, column: number): number;
  sqlite3_column_text(statement: number, column: number): number;
  sqlite3_column_blob(statement: number, column: number): number;
  sqlite3_column_bytes(statement: number, column: number): number;
}

const EXPORTS_USED: readonly (keyof Exports)[] = [
  "sqlite3_bind_null",
  "sqlite3_bind_int",
  "sqlite3_bind_int64",
  "sqlite3_bind_double",
  "sqlite3_bind_text",
  "sqlite3_bind_blob",
  "sqlite3_bind_parameter_count",
  "sqlite3_clear_bindings",
  "sqlite3_step",
  "sqlite3_reset",
  "sqlite3_changes",
  "sqlite3_column_count",
  "sqlite3_column_type",
  "sqlite3_column_int64",
  "sqlite3_column_double",
  "sqlite3_column_text",
  "sqlite3_column_blob",
  "sqlite3_column_bytes",
];

/** Exports that take a NULL statement and do nothing with it: they make {@link callExport}'s call site megamorphic at once. */
const EXPORTS_HARMLESS_ON_NULL: readonly (keyof Exports)[] = [
  "sqlite3_bind_parameter_count",
  "sqlite3_column_count",
  "sqlite3_column_type",
  "sqlite3_column_bytes",
  "sqlite3_column_double",
  "sqlite3_column_int64",
  "sqlite3_column_blob",
  "sqlite3_reset",
];

type ExportArgument = number | bigint | undefined;
type ExportFunction = (a: ExportArgument, b: ExportArgument, c: ExportArgument, d: ExportArgument, e: ExportArgument) => number | bigint;

/**
 * Calls one of SQLite's exported functions. Every call the connection makes into SQLite goes
 * through this one call site, which thus sees every export and which V8 treats as megamorphic:
 * V8 then never inlines a WebAssembly function into the JavaScript that calls it. Node 20's V8
 * inlines calls it knows the target of (`--turbo-inline-js-wasm-calls`), and its optimised code
 * crashed the whole process (a segmentation fault) while binding rows of blobs, numbers and
 * texts; going through here, it does not.
 */
function callExport(f: ExportFunction, a?: ExportArgument, b?: ExportArgument, c?: ExportArgument, d?: ExportArgument, e?: ExportArgument): number | bigint {
  return f(a, b, c, d, e);
}

/** SQLite's exports, each called through {@link callExport}. */
class SqliteCalls implements Exports {
  readonly #exports: Record<keyof Exports, ExportFunction>;

  constructor(exports: Record<keyof Exports, ExportFunction>) {
    this.#exports = exports;
    // Invariant: the call site has seen many targets before any connection's code is optimised.
    for (const name of EXPORTS_HARMLESS_ON_NULL) callExport(exports[name], 0, 0);
  }

  sqlite3_bind_null(statement: number, index: number): number {
    return callExport(this.#exports.sqlite3_bind_null, statement, index) as number;
  }
  sqlite3_bind_int(statement: number, index: number, value: number): number {
    return callExport(this.#exports.sqlite3_bind_int, statement, index, value) as number;
  }
  sqlite3_bind_int64(statement: number, index: number, value: bigint): number {
    return callExport(this.#exports.sqlite3_bind_int64, statement, index, value) as number;
  }
  sqlite3_bind_double(statement: number, index: number, value: number): number {
    return callExport(this.#exports.sqlite3_bind_double, statement, index, value) as number;
  }
  sqlite3_bind_text(statement: number, index: number, text: number, bytes: number, destructor: number): number {
    return callExport(this.#exports.sqlite3_bind_text, statement, index, text, bytes, destructor) as number;
  }
  sqlite3_bind_blob(statement: number, index: number, blob: number, bytes: number, destructor: number): number {
    return callExport(this.#exports.sqlite3_bind_blob, statement, index, blob, bytes, destructor) as number;
  }
  sqlite3_bind_parameter_count(statement: number): number {
    return callExport(this.#exports.sqlite3_bind_parameter_count, statement) as number;
  }
  sqlite3_clear_bindings(statement: number): number {
    return callExport(this.#exports.sqlite3_clear_bindings, statement) as number;
  }
  sqlite3_step(statement: number): number {
    return callExport(this.#exports.sqlite3_step, statement) as number;
  }
  sqlite3_reset(statement: number): number {
    return callExport(this.#exports.sqlite3_reset, statement) as number;
  }
  sqlite3_changes(db: number): number {
    return callExport(this.#exports.sqlite3_changes, db) as number;
  }
  sqlite3_column_count(statement: number): number {
    return callExport(this.#exports.sqlite3_column_count, statement) as number;
  }
  sqlite3_column_type(statement: number, column: number): number {
    return callExport(this.#exports.sqlite3_column_type, statement, column) as number;
  }
  sqlite3_column_int64(statement: number, column: number): bigint {
    return callExport(this.#exports.sqlite3_column_int64, statement, column) as bigint;
  }
  sqlite3_column_double(statement: number, column: number): number {
    return callExport(this.#exports.sqlite3_column_double, statement, column) as number;
  }
  sqlite3_column_text(statement: number, column: number): number {
    return callExport(this.#exports.sqlite3_column_text, statement, column) as number;
  }
  sqlite3_column_blob(statement: number, column: number): number {
    return callExport(this.#exports.sqlite3_column_blob, statement, column) as number;
  }
  sqlite3_column_bytes(statement: number, column: number): number {
    return callExport(this.#exports.sqlite3_column_bytes, statement, column) as number;
  }
}

/** What binding and reading through SQLite's exports needs of the module. */
interface Raw {
  exports: Exports;
  heap(): Uint8Array;
  alloc(bytes: number): number;
  dealloc(pointer: number): void;
}

/** SQLite's exports, when this build of the module can be used through them (32-bit pointers, 64-bit integers as `bigint`s). */
function rawOf(sqlite3: Sqlite3Static): Raw | null {
  const wasm = sqlite3.wasm as unknown as {
    exports: Partial<Record<keyof Exports, ExportFunction>>;
    bigIntEnabled?: boolean;
    heap8u(): Uint8Array;
    alloc(bytes: number): unknown;
    dealloc(pointer: unknown): void;
  };
  if (wasm.bigIntEnabled !== true || EXPORTS_USED.some((name) => typeof wasm.exports[name] !== "function")) return null;
  const probe = wasm.alloc(8);
  const narrow = typeof probe === "number";
  wasm.dealloc(probe);
  if (!narrow) return null;
  return {
    exports: new SqliteCalls(wasm.exports as Record<keyof Exports, ExportFunction>),
    heap: () => wasm.heap8u(),
    alloc: (bytes) => wasm.alloc(bytes) as number,
    dealloc: (pointer) => wasm.dealloc(pointer),
  };
}

/** A connection to an open sqlite-wasm database. */
export class WasmConnection implements SqlConnection {
  readonly #db: SqliteDatabase;
  readonly #statements = new Map<string, PreparedStatement>();
  readonly #raw: Raw | null;
  readonly #decoder = new TextDecoder();
  readonly #encoder = new TextEncoder();
  /** The buffer texts and blobs are bound from, and its size. */
  #buffer = 0;
  #bufferBytes = 0;

  constructor(sqlite3: Sqlite3Static, db: SqliteDatabase) {
    this.#db = db;
    this.#raw = rawOf(sqlite3);
  }

  /** The database, for the storage that opened it. */
  get db(): SqliteDatabase {
    return this.#db;
  }

  run(sql: string, params: readonly SqlValue[] = []): number {
    const statement = this.#prepare(sql);
    const raw = this.#raw;
    if (raw === null) {
      try {
        if (params.length > 0) statement.bind(params as SqlValue[]);
        statement.step();
      } finally {
        statement.reset(true);
      }
      return Number(this.#db.changes());
    }
    const pointer = statement.pointer as number;
    try {
      this.#bind(raw, pointer, params);
      const rc = raw.exports.sqlite3_step(pointer);
      if (rc !== SQLITE_ROW && rc !== SQLITE_DONE) this.#db.checkRc(rc);
    } finally {
      raw.exports.sqlite3_reset(pointer);
      raw.exports.sqlite3_clear_bindings(pointer);
    }
    return raw.exports.sqlite3_changes(this.#db.pointer as number);
  }

  all(sql: string, params: readonly SqlValue[] = []): SqlValue[][] {
    const statement = this.#prepare(sql);
    const rows: SqlValue[][] = [];
    const raw = this.#raw;
    if (raw === null) {
      try {
        if (params.length > 0) statement.bind(params as SqlValue[]);
        while (statement.step()) rows.push(statement.get([]) as SqlValue[]);
      } finally {
        statement.reset(true);
      }
      return rows;
    }
    const pointer = statement.pointer as number;
    const x = raw.exports;
    try {
      this.#bind(raw, pointer, params);
      const columns = x.sqlite3_column_count(pointer);
      for (;;) {
        const rc = x.sqlite3_step(pointer);
        if (rc === SQLITE_DONE) break;
        if (rc !== SQLITE_ROW) this.#db.checkRc(rc);
        const row: SqlValue[] = new Array<SqlValue>(columns);
        for (let column = 0; column < columns; column++) row[column] = this.#column(raw, pointer, column);
        rows.push(row);
      }
    } finally {
      x.sqlite3_reset(pointer);
      x.sqlite3_clear_bindings(pointer);
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
    if (this.#buffer !== 0) this.#raw?.dealloc(this.#buffer);
    this.#buffer = 0;
    this.#bufferBytes = 0;
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

  /** Binds `params` to `?1`, `?2`, …; texts and blobs from the connection's buffer, valid until the bindings are cleared. */
  #bind(raw: Raw, statement: number, params: readonly SqlValue[]): void {
    if (params.length === 0) return;
    const x = raw.exports;
    const count = x.sqlite3_bind_parameter_count(statement);
    if (params.length > count) {
      throw new RangeError(`a statement with ${count} parameters was given ${params.length} values`);
    }
    let bytes = 0;
    for (const value of params) {
      if (typeof value === "string") bytes += value.length * 3;
      else if (value instanceof Uint8Array) bytes += value.length;
    }
    const buffer = this.#reserve(raw, bytes);
    const heap = raw.heap();
    let at = buffer;
    for (let index = 0; index < params.length; index++) {
      const value = params[index] as SqlValue | boolean | undefined;
      const position = index + 1;
      let rc: number;
      if (value === null || value === undefined) {
        rc = x.sqlite3_bind_null(statement, position);
      } else if (typeof value === "number") {
        if ((value | 0) === value) rc = x.sqlite3_bind_int(statement, position, value);
        else if (Number.isInteger(value)) rc = x.sqlite3_bind_int64(statement, position, int64(BigInt(value)));
        else rc = x.sqlite3_bind_double(statement, position, value);
      } else if (typeof value === "string") {
        const written = this.#encode(value, heap, at);
        rc = x.sqlite3_bind_text(statement, position, at, written, 0);
        at += written;
      } else if (value instanceof Uint8Array) {
        heap.set(value, at);
        rc = x.sqlite3_bind_blob(statement, position, at, value.length, 0);
        at += value.length;
      } else if (typeof value === "bigint") {
        rc = x.sqlite3_bind_int64(statement, position, int64(value));
      } else if (typeof value === "boolean") {
        rc = x.sqlite3_bind_int(statement, position, value ? 1 : 0);
      } else {
        throw new TypeError(`a statement's parameter ${position} is a ${typeof value}, which SQLite cannot store`);
      }
      if (rc !== 0) this.#db.checkRc(rc);
    }
  }

  /**
   * Writes a text's UTF-8 at `at`; gives its length. Most texts are short and plain ASCII,
   * which are copied a character at a time (cheaper than `encodeInto` and the view it needs).
   */
  #encode(text: string, heap: Uint8Array, at: number): number {
    const length = text.length;
    if (length <= ASCII_COPIED_CHARS_MAX) {
      let i = 0;
      for (; i < length; i++) {
        const code = text.charCodeAt(i);
        if (code >= 0x80) break;
        heap[at + i] = code;
      }
      if (i === length) return length;
    }
    return this.#encoder.encodeInto(text, heap.subarray(at, at + length * 3)).written;
  }

  /** The connection's buffer, at least `bytes` long (and never at address 0, which SQLite would take for NULL). */
  #reserve(raw: Raw, bytes: number): number {
    if (this.#bufferBytes < bytes || this.#buffer === 0) {
      const size = Math.max(BIND_BUFFER_BYTES_MIN, bytes, this.#bufferBytes * 2);
      if (this.#buffer !== 0) raw.dealloc(this.#buffer);
      this.#buffer = 0;
      this.#bufferBytes = 0;
      this.#buffer = raw.alloc(size);
      this.#bufferBytes = size;
    }
    return this.#buffer;
  }

  /** A column of the current row. */
  #column(raw: Raw, statement: number, column: number): SqlValue {
    const x = raw.exports;
    switch (x.sqlite3_column_type(statement, column)) {
      case SQLITE_INTEGER: {
        const value = x.sqlite3_column_int64(statement, column);
        return value >= SAFE_MIN && value <= SAFE_MAX ? Number(value) : value;
      }
      case SQLITE_FLOAT:
        return x.sqlite3_column_double(statement, column);
      case SQLITE_TEXT: {
        const text = x.sqlite3_column_text(statement, column);
        const bytes = x.sqlite3_column_bytes(statement, column);
        return bytes === 0 ? "" : this.#decoder.decode(raw.heap().subarray(text, text + bytes));
      }
      case SQLITE_BLOB: {
        const blob = x.sqlite3_column_blob(statement, column);
        const bytes = x.sqlite3_column_bytes(statement, column);
        return bytes === 0 ? new Uint8Array(0) : raw.heap().slice(blob, blob + bytes);
      }
      default:
        return null;
    }
  }
}

/** An integer SQLite can store, or an error saying it is too big. */
function int64(value: bigint): bigint {
  if (value < INT64_MIN || value > INT64_MAX) throw new RangeError(`the integer ${value} is too big to store without losing precision`);
  return value;
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
  readonly #arrived = new Map<string, number>();

  async has(hash: string): Promise<boolean> {
    return this.#contents.has(hash);
  }

  async get(hash: string): Promise<Blob | null> {
    return this.#contents.get(hash) ?? null;
  }

  async put(hash: string, content: Blob): Promise<void> {
    // A copy of the bytes: the app may go on changing what it handed over.
    this.#contents.set(hash, new Blob([await content.arrayBuffer()]));
    this.#arrived.set(hash, Date.now());
  }

  async held(): Promise<{ hash: string; arrivedMs: number }[]> {
    return [...this.#contents.keys()].map((hash) => ({ hash, arrivedMs: this.#arrived.get(hash) ?? 0 }));
  }

  async remove(hash: string): Promise<void> {
    this.#contents.delete(hash);
    this.#arrived.delete(hash);
  }
}
