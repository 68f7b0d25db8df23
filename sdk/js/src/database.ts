/**
 * The device database an app works offline with: {@link openDatabase} and {@link Database}.
 * Objects are made, changed, committed, rolled back, deleted and queried here; the sync engine
 * ({@link SyncEngine}) moves committed changes to the server and the server's data back.
 *
 * @module
 */

import { CHECKPOINT_PREFIX, Device, Meta, statements } from "./device.js";
import { FerryError, fromCore, invalid, messageOf } from "./errors.js";
import type { Value, Values } from "./model.js";
import type { Deletion, FerryObject } from "./objects.js";
import { copyValues, createObject, getValue, objectArgument, rollbackObject, setValue, typed, writeCommit, writeDelete } from "./objects.js";
import type { Storage } from "./storage.js";
import type { StoredJson } from "./storage.js";
import { hex, idFromBytes, toSql } from "./storage.js";
import type { WasmLocation } from "./wasm.js";
import { Core, loadFerry, loadSqlite } from "./wasm.js";
import type { Watch } from "./watch.js";
import { startWatch } from "./watch.js";

/** The largest file content {@link Database.attachFile} takes, in bytes (as the Rust SDK's). */
export const FILE_BYTES_MAX = 2 * 1024 * 1024 * 1024;
/**
 * How long a content no file object on the device refers to stays in its file store after it
 * arrived, in hours: an attached file waits that long for its object's commit. A completed sync
 * removes older ones ({@link Database.collectFiles}), as the Rust SDK's `DEVICE_FILE_GRACE_HOURS`.
 */
export const DEVICE_FILE_GRACE_HOURS = 24;

/** What {@link openDatabase} takes. */
export interface OpenOptions {
  /** The model file's text (TOML), the server's (`GET /v1/model` gives it). */
  model: string;
  /** Where the database lives: {@link memoryStorage}, {@link fileStorage} or {@link opfsStorage}. */
  storage: Storage;
  /** Where the WebAssembly modules are, when a bundler moved them. */
  wasm?: WasmLocation;
}

/** How a query sorts and pages its objects. */
export interface QueryOptions {
  /** Attributes to sort by, in order, each ascending or descending; ties go by id. */
  sort?: [string, "asc" | "desc"][];
  /** At most this many objects. */
  limit?: number;
  /** Skip this many objects first. */
  offset?: number;
}

/** Options of {@link Database.watch} besides the query's. */
export interface WatchOptions extends QueryOptions {
  /** Called when reading the result or the callback failed (by default the console is told). */
  onError?: (error: unknown) => void;
}

/** An object with committed changes not yet uploaded, as {@link Database.pendingObjects} lists them. */
export interface PendingObject {
  /** The object's entity. */
  entity: string;
  /** The object's id. */
  id: string;
  /** A creation, an update, or a deletion. */
  kind: "create" | "update" | "delete";
  /** The members changed (every member for a creation, none for a deletion). */
  members: string[];
}

/** What a device holds, as {@link Database.status} tells it. */
export interface DeviceStatus {
  /** Objects with committed changes not uploaded yet. */
  pendingChanges: number;
  /** The id of the user who signed in last, if any. */
  user: string | null;
  /** The server they signed in to. */
  server: string | null;
  /** The version of the model the database holds. */
  modelVersion: string;
  /** When the last sync completed, and its mode (`all`, `unsynchronized` or `selected`). */
  lastSync: { at: string; mode: string } | null;
  /**
   * Why the next sync must be a full one, when it must: `first-sync` (none completed for this
   * user yet) or `model-changed` (the server's model changed since the last one).
   */
  fullSyncDue: "first-sync" | "model-changed" | null;
  /** The signed-in user's roles, as the server answered at the sign-in or the last refresh. */
  roles: string[];
}

/** What {@link Database.clear} does with unsynchronised changes of the entity. */
export interface ClearOptions {
  /** Clear even when objects of the entity have changes not uploaded yet (they are lost). */
  discardChanges?: boolean;
}

/**
 * Opens (or creates) a device database for a model. A new database gets the model's schema;
 * one made for an earlier version of the model is migrated when the change is additive,
 * keeping unsynchronised changes (a change that would lose data is refused, and nothing changes).
 *
 * @example
 * ```ts
 * import { openDatabase, memoryStorage } from "@ferry/sdk";
 * const db = await openDatabase({ model: modelText, storage: memoryStorage() });
 * const site = db.create("Field.Site");
 * db.set(site, "Name", "Depot");
 * await db.commit(site);
 * ```
 */
export async function openDatabase(options: OpenOptions): Promise<Database> {
  if (typeof options !== "object" || options === null) throw invalid("openDatabase takes options { model, storage }");
  for (const key of Object.keys(options)) {
    if (key !== "model" && key !== "storage" && key !== "wasm") throw invalid(`openDatabase has no option \`${key}\``, { option: key });
  }
  if (typeof options.model !== "string") throw invalid("openDatabase's `model` must be the model file's text", { option: "model" });
  const storage = options.storage as Partial<Storage> | undefined;
  if (typeof storage !== "object" || storage === null || typeof storage.open !== "function") {
    throw invalid("openDatabase's `storage` must be a storage (memoryStorage(), fileStorage(path), opfsStorage(name))", {
      option: "storage",
    });
  }
  await loadFerry(options.wasm);
  const core = fromCore("model", () => new Core(options.model));
  let opened;
  try {
    opened = await options.storage.open({ sqlite: () => loadSqlite(options.wasm) });
  } catch (error) {
    core.free();
    if (error instanceof FerryError) throw error;
    throw new FerryError("storage", `the device database (${options.storage.description}) cannot be opened: ${messageOf(error)}`);
  }
  const device = new Device(core, opened, options.storage.description);
  try {
    installModel(device, options.model);
    await device.persist();
  } catch (error) {
    await device.close().catch(() => {});
    throw error;
  }
  return new Database(device);
}

/** Creates the schema of a new database, or migrates one made for an earlier model; stores the model. */
function installModel(device: Device, modelText: string): void {
  const schema = JSON.parse(device.core.schema()) as { fixed: string[]; entities: string[] };
  device.transaction(() => {
    for (const statement of schema.fixed) device.connection.run(statement);
    const stored = device.meta(Meta.model);
    let plan = schema.entities;
    if (stored !== null) {
      const old = fromCore("corrupt", () => new Core(stored));
      try {
        const migration = fromCore("breaking-model", () => JSON.parse(old.migration(modelText)) as { statements: string[] });
        plan = migration.statements;
      } catch (error) {
        if (error instanceof FerryError && error.kind === "breaking-model") {
          throw new FerryError("breaking-model", `the device database cannot be migrated to this model:\n${error.message}`);
        }
        throw error;
      } finally {
        old.free();
      }
    }
    for (const statement of plan) device.connection.run(statement);
    device.setMeta(Meta.model, modelText);
  });
}

/** The device underneath a database, for the sync engine. */
export function deviceOf(database: Database): Device {
  const device = devices.get(database);
  if (device === undefined) throw invalid("expected a Database from openDatabase");
  return device;
}

const devices = new WeakMap<Database, Device>();

/**
 * A device database: one per device and model, holding the model's objects. Uncommitted
 * changes live only in the app's {@link FerryObject}s; committed ones are in the database,
 * which records what is dirty (committed, not yet uploaded) for the sync engine.
 *
 * Every call that touches storage is `async`; every call checks its input, and one that fails
 * changes nothing.
 */
export class Database {
  /** @internal */
  constructor(device: Device) {
    devices.set(this, device);
  }

  /** The WebAssembly core of the model the database holds now, for advanced use. */
  get core(): Core {
    return deviceOf(this).core;
  }

  /**
   * A new object of `entity` with the model's default values; nothing is written until
   * {@link Database.commit}. Its id is made here and never changes.
   *
   * @example
   * ```ts
   * const order = db.create("Field.WorkOrder");
   * order.values.Status; // "Open"
   * ```
   */
  create(entity: string): FerryObject {
    const device = deviceOf(this);
    device.check();
    return createObject(device, entity);
  }

  /**
   * Sets a member in the object (not in the database: see {@link Database.commit}). The value
   * must have the member's type: a string, an enumeration's value, a decimal as a string (at
   * most its scale's places), a date-time as an ISO string or a `Date`, an id or an object for
   * a reference, base64 or bytes for binary, `null` to empty it.
   *
   * @example
   * ```ts
   * db.set(order, "Title", "Fix the pump");
   * db.set(order, "Amount", "12.5"); // kept as "12.50"
   * db.set(order, "WorkOrder_Site", site);
   * ```
   */
  set(object: FerryObject, member: string, value: unknown): void {
    const device = deviceOf(this);
    device.check();
    setValue(device, object, member, value);
  }

  /**
   * The current value of a member (committed or not).
   *
   * @example
   * ```ts
   * db.get(order, "Status"); // "Open"
   * ```
   */
  get(object: FerryObject, member: string): Value {
    const device = deviceOf(this);
    device.check();
    return getValue(device, object, member);
  }

  /**
   * Writes the objects' changes to the database in one transaction: all or none. Validation
   * rules are checked first (the error names the rule, as the server would). Only committed
   * changes are ever uploaded; the objects keep working as before.
   *
   * @example
   * ```ts
   * await db.commit([site, order]);
   * ```
   */
  async commit(objects: FerryObject | FerryObject[]): Promise<void> {
    const device = deviceOf(this);
    const list = (Array.isArray(objects) ? objects : [objects]).map((object) => objectArgument(object, "commit"));
    const snapshots = list.map((object) => copyValues(object.values));
    await device.ready();
    const written: [string, string][] = [];
    device.transaction(() => {
      list.forEach((object, index) => {
        if (writeCommit(device, object, snapshots[index] ?? {})) written.push([object.entity, object.id]);
      });
    });
    list.forEach((object, index) => (object.committed = snapshots[index] ?? null));
    device.tellObjects(written, true);
    await device.persist();
  }

  /**
   * Returns the object to its last committed state (a new object to its defaults).
   *
   * @example
   * ```ts
   * db.set(site, "Name", "Typo");
   * db.rollback(site); // the committed name again
   * ```
   */
  rollback(object: FerryObject): void {
    const device = deviceOf(this);
    device.check();
    rollbackObject(device, object);
  }

  /**
   * Deletes the object on the device, and records the deletion when the server knows it. The
   * model's delete behaviour for associations pointing at it holds here as on the server:
   * referring objects on the device have their reference cleared, are deleted too, or make the
   * deletion refused (kind `delete-refused`, and nothing changes).
   *
   * @example
   * ```ts
   * await db.delete(site); // "removed": it was never uploaded
   * ```
   */
  async delete(object: FerryObject): Promise<Deletion> {
    const device = deviceOf(this);
    const target = objectArgument(object, "delete");
    const entity = device.model.appEntity(target.entity);
    if (target.committed === null) {
      target.deleted = true;
      return "discarded";
    }
    if (target.deleted) throw new FerryError("deleted", `\`${entity.name}\` ${target.id} was deleted`, { entity: entity.name, id: target.id });
    await device.ready();
    const { deletion, touched } = device.transaction(() => writeDelete(device, entity, target.id));
    target.deleted = true;
    device.tell(touched, true);
    await device.persist();
    return deletion;
  }

  /**
   * The committed object of `entity` with this id, or `null` when the device does not hold it.
   *
   * @example
   * ```ts
   * const again = await db.find("Field.Site", site.id);
   * ```
   */
  async find(entity: string, id: string): Promise<FerryObject | null> {
    const device = deviceOf(this);
    device.check();
    const info = device.model.entity(entity);
    const stored = device.storedId(id);
    await device.ready();
    const rows = device.connection.all(statements(device, info.name).selectById, [stored]);
    const found = device.read(info.name, rows)[0];
    return found === undefined ? null : fromStored(info.name, found);
  }

  /**
   * The committed objects of `entity` matching the constraint (the constraint language, or
   * none for every object), sorted and paged.
   *
   * @example
   * ```ts
   * const open = await db.query("Field.WorkOrder", "[Status = 'Open']", { sort: [["Number", "desc"]], limit: 20 });
   * ```
   */
  async query(entity: string, constraint?: string | null, options: QueryOptions = {}): Promise<FerryObject[]> {
    const device = deviceOf(this);
    device.check();
    const info = device.model.entity(entity);
    const optionsJson = queryOptions(constraint, options, "query");
    fromCore("constraint", () => device.core.query(info.name, optionsJson, null, new Date().toISOString()), { entity: info.name });
    await device.ready();
    return runQuery(device, info.name, optionsJson);
  }

  /**
   * Watches a query: `callback` gets its result now, then again after every local commit,
   * deletion, download or server action that changes it (and not otherwise), until
   * {@link Watch.close}. A bad entity, constraint or option is refused here, at once.
   *
   * @example
   * ```ts
   * const watch = db.watch("Field.WorkOrder", "[Status = 'Open']", { sort: [["Number", "asc"]] }, (orders) => show(orders));
   * watch.close();
   * ```
   */
  watch(entity: string, constraint: string | null | undefined, options: WatchOptions, callback: (objects: FerryObject[]) => void): Watch {
    const device = deviceOf(this);
    device.check();
    const info = device.model.entity(entity);
    if (typeof callback !== "function") throw invalid("watch takes a callback for its results", { option: "callback" });
    const { onError, ...query } = options ?? {};
    if (onError !== undefined && typeof onError !== "function") throw invalid("watch's `onError` must be a function", { option: "onError" });
    const optionsJson = queryOptions(constraint, query, "watch");
    fromCore("constraint", () => device.core.query(info.name, optionsJson, null, new Date().toISOString()), { entity: info.name });
    const followsPaths = typeof constraint === "string" && constraint.includes("/");
    const read = async () => {
      await device.ready();
      return runQuery(device, info.name, optionsJson);
    };
    return startWatch(device, info.name, followsPaths, read, onError === undefined ? { onResult: callback } : { onResult: callback, onError });
  }

  /**
   * How many objects have committed changes not yet uploaded.
   *
   * @example
   * ```ts
   * await db.pendingChanges(); // 2
   * ```
   */
  async pendingChanges(): Promise<number> {
    const device = deviceOf(this);
    await device.ready();
    return Number(device.connection.all("SELECT count(*) FROM ferry_dirty")[0]?.[0] ?? 0);
  }

  /**
   * The objects with committed changes not yet uploaded: what the next sync sends.
   *
   * @example
   * ```ts
   * for (const pending of await db.pendingObjects()) console.log(pending.kind, pending.entity, pending.members);
   * ```
   */
  async pendingObjects(): Promise<PendingObject[]> {
    const device = deviceOf(this);
    await device.ready();
    const rows = device.connection.all("SELECT entity, object_id, kind, members FROM ferry_dirty ORDER BY entity, object_id");
    return rows.map(([entity, id, kind, members]) => ({
      entity: String(entity),
      id: idFromBytes(id ?? null) ?? "",
      kind: kind === "create" || kind === "update" ? kind : "delete",
      members: String(members ?? "").split(",").filter((member) => member !== ""),
    }));
  }

  /**
   * What the device holds: its pending changes, who is signed in and where, the model, its last
   * completed sync, and whether the next sync must be a full one.
   *
   * @example
   * ```ts
   * const { pendingChanges, lastSync, fullSyncDue } = await db.status();
   * ```
   */
  async status(): Promise<DeviceStatus> {
    const device = deviceOf(this);
    await device.ready();
    const pending = Number(device.connection.all("SELECT count(*) FROM ferry_dirty")[0]?.[0] ?? 0);
    const lastSyncText = device.meta(Meta.lastSync);
    const space = lastSyncText?.indexOf(" ") ?? -1;
    const lastSync = lastSyncText !== null && space > 0 ? { at: lastSyncText.slice(0, space), mode: lastSyncText.slice(space + 1) } : null;
    // As the sync core's `full_sync_due`: a changed model first, then a device that never downloaded.
    const due = device.core.fullSyncDue(device.meta(Meta.fullSyncNeeded) !== null, device.anyCheckpoint());
    const fullSyncDue = (due ?? null) as "first-sync" | "model-changed" | null;
    return {
      pendingChanges: pending,
      user: device.meta(Meta.user),
      server: device.meta(Meta.server),
      modelVersion: device.core.version(),
      lastSync,
      fullSyncDue,
      roles: rolesOf(device.meta(Meta.roles)),
    };
  }

  /**
   * Removes every object of `entity` from the device only (nothing is deleted on the server);
   * refused while objects of it have changes not uploaded, unless `discardChanges`. Gives how
   * many objects were removed.
   *
   * @example
   * ```ts
   * await db.clear("Field.Feedback");
   * ```
   */
  async clear(entity: string, options: ClearOptions = {}): Promise<number> {
    const device = deviceOf(this);
    device.check();
    const info = device.model.appEntity(entity);
    for (const key of Object.keys(options ?? {})) {
      if (key !== "discardChanges") throw invalid(`clear has no option \`${key}\``, { option: key });
    }
    await device.afterDownload();
    await device.ready();
    const removed = device.transaction(() => {
      const dirty = Number(device.connection.all("SELECT count(*) FROM ferry_dirty WHERE entity = ?1", [info.name])[0]?.[0] ?? 0);
      if (dirty > 0 && options?.discardChanges !== true) {
        throw new FerryError(
          "unsynced-changes",
          `\`${info.name}\` has ${dirty} objects with unsynchronised changes; sync first, or clear with discardChanges`,
          { entity: info.name, count: dirty },
        );
      }
      // Objects the server knew are remembered while changes wait for upload (see ferry_removed).
      device.connection.run(
        `INSERT OR IGNORE INTO ferry_removed (entity, object_id) SELECT ?1, id FROM ${info.table} ` +
          "WHERE EXISTS (SELECT 1 FROM ferry_dirty) " +
          "AND id NOT IN (SELECT object_id FROM ferry_dirty WHERE entity = ?1 AND kind = 'create')",
        [info.name],
      );
      const count = device.connection.run(`DELETE FROM ${info.table}`);
      device.connection.run("DELETE FROM ferry_dirty WHERE entity = ?1", [info.name]);
      device.forgetMeta(`${CHECKPOINT_PREFIX}${info.name}`);
      return count;
    });
    device.tellEntities([info.name], false);
    await device.persist();
    return removed;
  }

  /**
   * Attaches a file's content to an object of a file entity: the content goes into the
   * device's file store (by its SHA-256) and the object's `ContentHash`, `FileName`, `FileSize`
   * and `ContentChanged` are set, uncommitted. Commit the object, and the next sync uploads the
   * content before the object.
   *
   * @example
   * ```ts
   * const photo = db.create("Field.Photo");
   * await db.attachFile(photo, new Blob([jpegBytes], { type: "image/jpeg" }), "pump.jpg");
   * await db.commit(photo);
   * ```
   */
  async attachFile(object: FerryObject, content: Blob | Uint8Array | ArrayBuffer, fileName: string): Promise<void> {
    const device = deviceOf(this);
    device.check();
    const target = objectArgument(object, "attachFile");
    const entity = fileEntity(device, target);
    if (target.deleted) throw new FerryError("deleted", `\`${entity.name}\` ${target.id} was deleted`, { entity: entity.name, id: target.id });
    if (typeof fileName !== "string") throw invalid("attachFile takes the file's name as a string", { option: "fileName" });
    const blob = content instanceof Blob ? content : content instanceof Uint8Array || content instanceof ArrayBuffer ? new Blob([content as BlobPart]) : null;
    if (blob === null) throw invalid("attachFile takes the content as a Blob, a Uint8Array or an ArrayBuffer", { option: "content" });
    if (blob.size > FILE_BYTES_MAX) throw new FerryError("file-too-large", `a file content may hold at most ${FILE_BYTES_MAX} bytes`, { limit: FILE_BYTES_MAX });
    const bytes = await blob.arrayBuffer();
    const hash = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
    // The values are checked before anything is stored, so a bad name changes nothing.
    const values: Values = {};
    for (const [member, value] of [
      ["FileName", fileName],
      ["FileSize", bytes.byteLength],
      ["ContentHash", hash],
      ["ContentChanged", new Date().toISOString()],
    ] as const) {
      values[member] = typed(device, entity, device.model.member(entity, member), value);
    }
    await device.files.put(hash, new Blob([bytes], { type: blob.type }));
    Object.assign(target.values, values);
  }

  /**
   * The file content of an object of a file entity, or `null` when it has none or the content
   * is not on the device (not downloaded yet).
   *
   * @example
   * ```ts
   * const blob = await db.readFile(photo);
   * if (blob) image.src = URL.createObjectURL(blob);
   * ```
   */
  async readFile(object: FerryObject): Promise<Blob | null> {
    const device = deviceOf(this);
    device.check();
    const target = objectArgument(object, "readFile");
    fileEntity(device, target);
    const hash = target.values["ContentHash"];
    return typeof hash === "string" && hash !== "" ? await device.files.get(hash) : null;
  }

  /**
   * Removes from the file store the contents no file object on the device refers to (by its
   * `ContentHash`, committed or in the stored upload) that arrived more than `graceMs` ago:
   * those of objects deleted, replaced by a download, or left uncommitted. Gives how many went;
   * a storage whose file store cannot list its contents keeps them all (0). A completed sync
   * runs it with {@link DEVICE_FILE_GRACE_HOURS}.
   *
   * @example
   * ```ts
   * const removed = await db.collectFiles(0); // every content nothing refers to, now
   * ```
   */
  async collectFiles(graceMs: number): Promise<number> {
    const device = deviceOf(this);
    device.check();
    if (typeof graceMs !== "number" || !(graceMs >= 0)) {
      throw invalid("collectFiles takes a grace period in milliseconds, 0 or more", { option: "graceMs" });
    }
    const files = device.files;
    if (files.held === undefined || files.remove === undefined) return 0;
    await device.ready();
    const needed = new Set<string>();
    for (const entity of device.model.entities.filter((e) => e.kind === "file")) {
      const column = device.model.member(entity, "ContentHash").column;
      for (const [hash] of device.connection.all(`SELECT DISTINCT ${column} FROM ${entity.table} WHERE ${column} IS NOT NULL`)) {
        if (typeof hash === "string") needed.add(hash);
      }
    }
    const pending = device.meta(Meta.pendingUpload);
    if (pending !== null) {
      const request = JSON.parse(pending) as { changes: { values?: Record<string, unknown> }[] };
      for (const change of request.changes) {
        const hash = change.values?.["ContentHash"];
        if (typeof hash === "string") needed.add(hash);
      }
    }
    const before = Date.now() - graceMs;
    let removed = 0;
    for (const { hash, arrivedMs } of await files.held()) {
      if (needed.has(hash) || arrivedMs > before) continue;
      await files.remove(hash);
      removed += 1;
    }
    return removed;
  }

  /**
   * Closes the database: live mode of engines on it stops, a sync running is waited for, and
   * every later call is refused.
   *
   * @example
   * ```ts
   * await db.close();
   * ```
   */
  async close(): Promise<void> {
    await deviceOf(this).close();
  }
}

/** A read object as the app holds it. */
export function fromStored(entity: string, stored: { id: string; values: Values }): FerryObject {
  return { entity, id: stored.id, values: stored.values, committed: copyValues(stored.values), deleted: false };
}

function fileEntity(device: Device, object: FerryObject) {
  const entity = device.model.entity(object.entity);
  if (entity.kind !== "file") {
    throw new FerryError("not-a-file-entity", `\`${entity.name}\` is not a file entity: its objects carry no file contents`, {
      entity: entity.name,
    });
  }
  return entity;
}

/** A query's options as the core takes them, checked. */
function queryOptions(constraint: string | null | undefined, options: QueryOptions, call: string): string {
  if (constraint !== undefined && constraint !== null && typeof constraint !== "string") {
    throw invalid(`${call}'s constraint must be a string such as "[Status = 'Open']"`, { option: "constraint" });
  }
  if (typeof options !== "object" || options === null) throw invalid(`${call}'s options must be an object { sort, limit, offset }`);
  for (const key of Object.keys(options)) {
    if (key !== "sort" && key !== "limit" && key !== "offset") throw invalid(`${call} has no option \`${key}\``, { option: key });
  }
  const count = (name: "limit" | "offset") => {
    const value = options[name];
    if (value !== undefined && (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)) {
      throw invalid(`${call}'s \`${name}\` must be a whole number of objects, not ${JSON.stringify(value)}`, { option: name });
    }
    return value;
  };
  const sort = options.sort ?? [];
  if (!Array.isArray(sort) || !sort.every((entry) => Array.isArray(entry) && entry.length === 2 && typeof entry[0] === "string")) {
    throw invalid(`${call}'s \`sort\` must be a list of [attribute, "asc" | "desc"]`, { option: "sort" });
  }
  return JSON.stringify({
    constraint: constraint === "" || constraint === null ? undefined : constraint,
    sort,
    limit: count("limit"),
    offset: count("offset"),
  });
}

/** Runs a checked query now (the caller has the database's turn). */
function runQuery(device: Device, entity: string, optionsJson: string): FerryObject[] {
  const user = device.meta(Meta.user);
  const compiled = fromCore("constraint", () =>
    JSON.parse(device.core.query(entity, optionsJson, user, new Date().toISOString())) as { sql: string; params: StoredJson[] },
  );
  const rows = device.connection.all(compiled.sql, compiled.params.map(toSql));
  return device.read(entity, rows).map((stored) => fromStored(entity, stored));
}

/** The roles kept in `ferry_meta` (a JSON array of names), or none. */
function rolesOf(text: string | null): string[] {
  if (text === null) return [];
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed.filter((role): role is string => typeof role === "string") : [];
  } catch {
    return [];
  }
}
