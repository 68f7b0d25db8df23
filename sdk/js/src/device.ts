/**
 * The device database underneath the public {@link Database}: its connection, the device's
 * state in `ferry_meta` (the same keys and formats as the Rust SDK's), transactions, the turn
 * a download's transaction takes, making writes durable, and telling watches and live mode
 * what each committed write changed.
 *
 * @module
 */

import { FerryError, fromCore, messageOf } from "./errors.js";
import { ModelInfo } from "./model.js";
import type { Values } from "./model.js";
import type { FileStore, OpenStorage, SqlConnection, SqlValue, StoredJson } from "./storage.js";
import { fromSql, toSql, unhex } from "./storage.js";
import { Core } from "./wasm.js";

/**
 * The keys of `ferry_meta`, as the Rust SDK writes them (`crates/ferry-client/src/database.rs`).
 * Checkpoints live there too, under `checkpoint:<entity>` ({@link CHECKPOINT_PREFIX}).
 */
export const Meta = {
  /** The model file the schema was made from. */
  model: "model",
  /** The signed-in user's id (UUID form). */
  user: "user",
  /** The server signed in to (`scheme://host:port[/prefix]`). */
  server: "server",
  /** The signed-in user's access token. */
  token: "token",
  /** The session's refresh token. */
  refreshToken: "refresh_token",
  /** This device's name on the server: 32 hex digits, made at its first sync. */
  device: "device",
  /** The upload stored before it was sent (its JSON), until it is answered. */
  pendingUpload: "pending_upload",
  /** `1` while a full sync is due because the model changed. */
  fullSyncNeeded: "full_sync_needed",
  /** When the last sync completed and its mode: `<ISO time> <mode>`. */
  lastSync: "last_sync",
  /** The signed-in user's roles as the server last answered them: a JSON array of names. */
  roles: "roles",
  /** The server's epoch as the device last saw it (new at each restore of the server's data). */
  serverEpoch: "server_epoch",
  /** `1` from a restore of the server's data until a full sync completes: downloads are full and ask no index. */
  downloadWithoutIndex: "download_without_index",
} as const;

/** An id in its UUID form: 32 hex digits in groups of 8, 4, 4, 4 and 12. */
const UUID_FORM = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** The prefix of each entity's checkpoint key in `ferry_meta`. */
export const CHECKPOINT_PREFIX = "checkpoint:";

/** Which objects of an entity a write touched: these ids, or some not named. */
export type Touched = Set<string> | "some";

/** What one committed write on the device changed. */
export interface Change {
  /** The entities whose objects it wrote or removed, and which objects. */
  readonly entities: ReadonlyMap<string, Touched>;
  /** A commit of the app's, which waits for upload (not a download or a sync's answer). */
  readonly local: boolean;
}

/** An object as read from its table: its id and values. */
export interface StoredObject {
  readonly id: string;
  readonly values: Values;
}

/**
 * The turn of a download's transaction: while one is open on the connection, every other use
 * of the database waits, since it would see (and could commit) the download's writes half done.
 */
class Gate {
  #held: Promise<void> | null = null;
  #release: (() => void) | null = null;

  /** Waits until no download's transaction is open. */
  async turn(): Promise<void> {
    while (this.#held !== null) await this.#held;
  }

  get isHeld(): boolean {
    return this.#held !== null;
  }

  hold(): void {
    if (this.#held !== null) throw new Error("a download's transaction is open already");
    this.#held = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    const release = this.#release;
    this.#held = null;
    this.#release = null;
    release?.();
  }
}

/** The device database: what the public API and the sync shell both work on. */
export class Device {
  core: Core;
  model: ModelInfo;
  readonly connection: SqlConnection;
  readonly files: FileStore;
  readonly description: string;
  readonly gate = new Gate();
  readonly #storage: OpenStorage;
  readonly #listeners = new Set<(change: Change) => void>();
  #persisting: Promise<void> = Promise.resolve();
  #closed = false;
  #job: Promise<unknown> | null = null;
  /** Told when a job starts (true) and ends (false). */
  readonly jobListeners = new Set<(running: boolean) => void>();
  /** Called when the database closes: stops live mode of the engines on it. */
  readonly closers = new Set<() => void>();

  constructor(core: Core, storage: OpenStorage, description: string) {
    this.core = core;
    this.model = new ModelInfo(core);
    this.connection = storage.connection;
    this.files = storage.files;
    this.description = description;
    this.#storage = storage;
  }

  /** The job (a sync, a sign-in, an action call) running on this database, if any. */
  get job(): Promise<unknown> | null {
    return this.#job;
  }

  set job(job: Promise<unknown> | null) {
    this.#job = job;
    for (const listener of [...this.jobListeners]) listener(job !== null);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Refuses once the database is closed. */
  check(): void {
    if (this.#closed) throw new FerryError("closed", `the device database (${this.description}) is closed`);
  }

  #download: { done: Promise<void>; end: () => void } | null = null;

  /** A download begins (its steps may wait in memory before its transaction opens). */
  downloadBegins(): void {
    let end = () => {};
    const done = new Promise<void>((resolve) => (end = resolve));
    this.#download = { done, end };
  }

  /** The download committed or rolled back. */
  downloadEnds(): void {
    this.#download?.end();
    this.#download = null;
  }

  /**
   * Waits until no download is under way, its transaction open or not: a write that must land
   * after a download's (a `clear`, whose forgotten checkpoint the download would otherwise
   * write back) waits for it, as the Rust SDK's writes wait for the download's turn.
   */
  async afterDownload(): Promise<void> {
    while (this.#download !== null) await this.#download.done;
  }

  /** Waits for the database's turn (after any download's transaction); refuses once closed. */
  async ready(): Promise<void> {
    this.check();
    await this.gate.turn();
    this.check();
  }

  /** Runs `work` in one transaction: all of it is committed, or none (it threw). */
  transaction<T>(work: () => T): T {
    this.connection.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.connection.exec("COMMIT");
      return result;
    } catch (error) {
      try {
        this.connection.exec("ROLLBACK");
      } catch {
        // The transaction ended with the statement that failed.
      }
      throw error;
    }
  }

  /** Makes every committed write durable, in the order they were made. */
  persist(): Promise<void> {
    const next = this.#persisting.then(async () => {
      await this.gate.turn();
      await this.#storage.persist();
    });
    // A failed write is the caller's to see; the next one starts from the database anyway.
    this.#persisting = next.catch(() => {});
    return next;
  }

  /** A value of the device's state in `ferry_meta`. */
  meta(key: string): string | null {
    const rows = this.connection.all("SELECT value FROM ferry_meta WHERE key = ?1", [key]);
    const value = rows[0]?.[0];
    return typeof value === "string" ? value : null;
  }

  /** Sets a value of the device's state. */
  setMeta(key: string, value: string): void {
    this.connection.run(
      "INSERT INTO ferry_meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      [key, value],
    );
  }

  /** Removes a value of the device's state. */
  forgetMeta(key: string): void {
    this.connection.run("DELETE FROM ferry_meta WHERE key = ?1", [key]);
  }

  /** True when some entity has a checkpoint: a full sync completed once for this user. */
  anyCheckpoint(): boolean {
    const rows = this.connection.all("SELECT count(*) FROM ferry_meta WHERE key LIKE ?1", [`${CHECKPOINT_PREFIX}%`]);
    return Number(rows[0]?.[0] ?? 0) > 0;
  }

  /** An object id's stored form (16 bytes), or an error naming the id. */
  storedId(id: unknown): Uint8Array {
    if (typeof id !== "string") throw new FerryError("invalid-argument", `\`${String(id)}\` is not an object id`);
    // The UUID form the SDK itself writes is read here; any other text goes to the core, which
    // knows every form an id may take and words the error for one that is none.
    if (UUID_FORM.test(id)) {
      const bytes = unhex(id.replace(/-/g, ""));
      if (bytes !== null) return bytes;
    }
    const stored = fromCore("invalid-argument", () => JSON.parse(this.core.storedId(id)) as StoredJson);
    return toSql(stored) as Uint8Array;
  }

  /** Objects read back from rows of an entity's `select` (the id, then each member's column). */
  read(entity: string, rows: SqlValue[][]): StoredObject[] {
    if (rows.length === 0) return [];
    const stored = rows.map((row) => row.map(fromSql));
    return fromCore("corrupt", () => JSON.parse(this.core.readAll(entity, JSON.stringify(stored))) as StoredObject[]);
  }

  /** Every change from now on, until the returned function is called. */
  subscribe(listener: (change: Change) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells watches and live mode of a committed write. */
  tell(entities: Map<string, Touched>, local: boolean): void {
    if (entities.size === 0) return;
    const change: Change = { entities, local };
    for (const listener of [...this.#listeners]) listener(change);
  }

  /** Tells of a write that touched these objects. */
  tellObjects(objects: Iterable<readonly [string, string]>, local: boolean): void {
    const entities = new Map<string, Touched>();
    for (const [entity, id] of objects) {
      const touched = entities.get(entity);
      if (touched === undefined) entities.set(entity, new Set([id]));
      else if (touched !== "some") touched.add(id);
    }
    this.tell(entities, local);
  }

  /** Tells of a write that touched objects of these entities, not saying which. */
  tellEntities(names: Iterable<string>, local: boolean): void {
    this.tell(new Map([...names].map((name) => [name, "some" as const])), local);
  }

  /**
   * Moves the database to another model (as a sync does when the server's changed): the
   * schema is migrated in one transaction with the new model text, keeping unsynchronised
   * changes. Gives whether the model changed; a change that would lose data is refused.
   */
  upgradeModel(text: string): boolean {
    const next = fromCore("model", () => new Core(text));
    if (next.version() === this.core.version()) {
      next.free();
      return false;
    }
    try {
      const plan = fromCore("breaking-model", () => JSON.parse(this.core.migration(text)) as { statements: string[] });
      this.transaction(() => {
        for (const statement of plan.statements) this.connection.run(statement);
        this.setMeta(Meta.model, text);
      });
    } catch (error) {
      next.free();
      throw error;
    }
    const previous = this.core;
    this.core = next;
    this.model = new ModelInfo(next);
    previous.free();
    return true;
  }

  /** Closes the database (once no download's transaction is open). */
  async close(): Promise<void> {
    if (this.#closed) return;
    for (const close of [...this.closers]) close();
    if (this.job !== null) await this.job.catch(() => {});
    await this.gate.turn();
    await this.#persisting;
    this.#closed = true;
    this.#listeners.clear();
    try {
      await this.#storage.close();
    } catch (error) {
      throw new FerryError("storage", `the device database (${this.description}) did not close cleanly: ${messageOf(error)}`);
    } finally {
      this.core.free();
    }
  }
}

/** Statements of some members kept per core; past this many the cache starts over. */
const MEMBER_STATEMENTS_CACHED_MAX = 256;

/** The statements the core gives for an entity. */
export interface Statements {
  table: string;
  insert: string;
  replace: string;
  select: string;
  selectById: string;
  countById: string;
  deleteById: string;
  selectIds: string;
}

const statementCache = new WeakMap<Core, Map<string, Statements>>();
const memberStatementCache = new WeakMap<Core, Map<string, string>>();

/**
 * The core's statement that writes some members of an entity (`update`: `updateStatement`,
 * `refresh`: `refreshStatement`), kept per core: an upload's answer refreshes many objects
 * with the same members.
 */
export function memberStatement(device: Device, kind: "update" | "refresh", entity: string, members: readonly string[]): string {
  let cached = memberStatementCache.get(device.core);
  if (cached === undefined) memberStatementCache.set(device.core, (cached = new Map()));
  const key = `${kind}\u0000${entity}\u0000${members.join("\u0000")}`;
  let found = cached.get(key);
  if (found === undefined) {
    const text = JSON.stringify(members);
    found = kind === "update" ? device.core.updateStatement(entity, text) : device.core.refreshStatement(entity, text);
    if (cached.size >= MEMBER_STATEMENTS_CACHED_MAX) cached.clear();
    cached.set(key, found);
  }
  return found;
}

/** An entity's statements, from the core (kept per core: they never change for a model). */
export function statements(device: Device, entity: string): Statements {
  let cached = statementCache.get(device.core);
  if (cached === undefined) statementCache.set(device.core, (cached = new Map()));
  let found = cached.get(entity);
  if (found === undefined) {
    found = fromCore("unknown-entity", () => JSON.parse(device.core.statements(entity)) as Statements);
    cached.set(entity, found);
  }
  return found;
}
