/**
 * Where a device database lives: the small interface a platform implements (a SQLite
 * connection, a store of file contents, and a way to make committed writes durable), and the
 * conversions between the core's JSON form of stored values and SQLite's.
 *
 * The SDK ships three: {@link memoryStorage} (Node tests), {@link fileStorage} (Node, a SQLite
 * file) and {@link opfsStorage} (browsers, in a Worker). Another platform (Electron, React
 * Native) adds one by implementing {@link Storage}.
 *
 * @module
 */

import type { Sqlite3Static } from "./wasm.js";

/** A value SQLite stores: NULL, an integer (a `bigint` beyond 2^53), text, or a blob. */
export type SqlValue = null | number | bigint | string | Uint8Array;

/**
 * A connection to the device database. Its calls are synchronous: a transaction the SDK runs
 * then happens in one turn of the event loop, and nothing else of the app runs in between.
 *
 * @example
 * ```ts
 * const connection: SqlConnection = {
 *   run: (sql, params) => betterSqlite.prepare(sql).run(...(params ?? [])).changes,
 *   all: (sql, params) => betterSqlite.prepare(sql).raw().all(...(params ?? [])),
 *   exec: (sql) => void betterSqlite.exec(sql),
 * };
 * ```
 */
export interface SqlConnection {
  /** Runs one statement with its parameters (`?1`, `?2`, … bound in order); gives the rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): number;
  /** Runs one query with its parameters; gives its rows, each an array of its columns' values. */
  all(sql: string, params?: readonly SqlValue[]): SqlValue[][];
  /** Runs statements without parameters (`BEGIN`, `COMMIT`, a schema). */
  exec(sql: string): void;
}

/**
 * File contents of a device, by the SHA-256 (lowercase hex) of their bytes. A content is
 * written whole or not at all: a crash never leaves part of one under its name.
 *
 * @example
 * ```ts
 * const files: FileStore = {
 *   has: async (hash) => map.has(hash),
 *   get: async (hash) => map.get(hash) ?? null,
 *   put: async (hash, content) => void map.set(hash, content),
 * };
 * ```
 */
export interface FileStore {
  /** True when the store holds the content. */
  has(hash: string): Promise<boolean>;
  /** The content, or `null` when the store does not hold it. */
  get(hash: string): Promise<Blob | null>;
  /** Keeps `content` under `hash` (which the SDK computed from it), replacing nothing else. */
  put(hash: string, content: Blob): Promise<void>;
  /**
   * Every content held, with when it arrived (milliseconds since the epoch). Optional: a store
   * without it keeps every content (see {@link Database.collectFiles}).
   */
  held?(): Promise<{ hash: string; arrivedMs: number }[]>;
  /** Removes a content; one not held is no error. Optional, with `held`. */
  remove?(hash: string): Promise<void>;
}

/** A storage opened: its connection and file store, until {@link OpenStorage.close}. */
export interface OpenStorage {
  /** The connection the database runs on. */
  readonly connection: SqlConnection;
  /** Where file contents go. */
  readonly files: FileStore;
  /**
   * Makes everything committed so far durable (a storage that writes through, as SQLite on a
   * file does, has nothing to do). Called after each committed write, never while a
   * transaction is open.
   */
  persist(): Promise<void>;
  /** Closes the connection; the storage is not used afterwards. */
  close(): Promise<void>;
}

/** What {@link Storage.open} is given. */
export interface StorageContext {
  /** Loads SQLite compiled to WebAssembly (once per realm), for storages that use it. */
  sqlite(): Promise<Sqlite3Static>;
}

/**
 * A place for a device database: opened once by {@link openDatabase}.
 *
 * @example
 * ```ts
 * const db = await openDatabase({ model, storage: fileStorage("/var/lib/app/device.db") });
 * ```
 */
export interface Storage {
  /** A short description for errors (`memory`, the file's path, the OPFS name). */
  readonly description: string;
  /** Opens (or creates) the database and its file store. */
  open(context: StorageContext): Promise<OpenStorage>;
}

/** A stored value in the core's JSON form (see `crates/ferry-wasm/src/values.rs`). */
export type StoredJson = null | number | string | { blob: string } | { int: string };

/** Each byte's two lowercase hex digits. */
const HEX_BYTES = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** Bytes as lowercase hex. */
export function hex(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += HEX_BYTES[byte] as string;
  return text;
}

/** The value of each hex digit's character code (either case), -1 for any other character. */
const HEX_DIGITS = (() => {
  const digits = new Int8Array(128).fill(-1);
  for (let digit = 0; digit < 16; digit++) {
    digits[digit.toString(16).charCodeAt(0)] = digit;
    digits[digit.toString(16).toUpperCase().charCodeAt(0)] = digit;
  }
  return digits;
})();

/** Lowercase or uppercase hex as bytes; `null` when it is not hex. */
export function unhex(text: string): Uint8Array | null {
  if (text.length % 2 !== 0) return null;
  const bytes = new Uint8Array(text.length / 2);
  for (let i = 0; i < bytes.length; i++) {
    const high = HEX_DIGITS[text.charCodeAt(2 * i)] ?? -1;
    const low = HEX_DIGITS[text.charCodeAt(2 * i + 1)] ?? -1;
    if (high < 0 || low < 0) return null;
    bytes[i] = (high << 4) | low;
  }
  return bytes;
}

/** A stored value in the core's JSON form, to bind. */
export function toSql(value: StoredJson): SqlValue {
  if (value === null || typeof value === "number" || typeof value === "string") return value;
  if ("blob" in value) {
    const bytes = unhex(value.blob);
    if (bytes === null) throw new Error(`\`${value.blob}\` is not the hex of a blob`);
    return bytes;
  }
  return BigInt(value.int);
}

/** A value SQLite gave back, in the core's JSON form. */
export function fromSql(value: SqlValue): StoredJson {
  if (value === null || typeof value === "string") return value;
  if (value instanceof Uint8Array) return { blob: hex(value) };
  if (typeof value === "bigint") {
    const safe = value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER);
    return safe ? Number(value) : { int: value.toString() };
  }
  // A real: Ferry writes none; the Rust SDK reads one back as its text, and so does this.
  return Number.isInteger(value) ? value : String(value);
}

/** An object id (UUID form) from its stored 16 bytes; `null` for anything else. */
export function idFromBytes(value: SqlValue): string | null {
  if (!(value instanceof Uint8Array) || value.length !== 16) return null;
  return idFromHex(hex(value));
}

/** An object id (UUID form, lowercase) from the 32 hex digits of its stored bytes; `null` for anything else. */
export function idFromHex(text: string): string | null {
  if (text.length !== 32) return null;
  for (let i = 0; i < 32; i++) if ((HEX_DIGITS[text.charCodeAt(i)] ?? -1) < 0) return null;
  const lower = text.toLowerCase();
  return `${lower.slice(0, 8)}-${lower.slice(8, 12)}-${lower.slice(12, 16)}-${lower.slice(16, 20)}-${lower.slice(20)}`;
}
