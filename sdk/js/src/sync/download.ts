/**
 * Applying a download (`crates/ferry-client/src/sync/apply.rs`): everything from the core's
 * `begin-download` to its `commit-download` goes into one local transaction, so a download
 * that stops part way (a network failure, a cancellation) changes nothing on the device.
 * Objects with unsynchronised changes are left as they are; a full download removes, at its
 * entity's end, what the server no longer sends.
 *
 * Steps are kept in memory and written in one go at the commit, so the app goes on reading
 * and committing meanwhile (its reads see the state before the download, as the Rust SDK's
 * do); a download past {@link DOWNLOAD_BUFFERED_OBJECTS_MAX} objects opens its transaction
 * instead, writes what it kept and then each step as it comes, and the app's calls wait for
 * it to end.
 *
 * @module
 */

import type { Device, Touched } from "../device.js";
import type { EntityInfo } from "../model.js";
import { CHECKPOINT_PREFIX, statements } from "../device.js";
import { bind } from "../objects.js";
import type { StoredJson } from "../storage.js";
import { idFromBytes, idFromHex } from "../storage.js";
import { forgetOldestRemoved, holdsObjects, rememberRemoved } from "./store.js";

/** Objects a download keeps in memory before it opens its transaction and writes as it goes. */
export const DOWNLOAD_BUFFERED_OBJECTS_MAX = 10_000;

/**
 * Objects in the first page of an entity the device holds none of, from which the download
 * drops the table's secondary indexes and makes them again at the entity's end: SQLite builds
 * an index over rows already written faster than it keeps one up to date row by row.
 */
export const INDEX_REBUILD_OBJECTS_MIN = 1_000;

/** A step of the download, as the wire writes it. */
export type Step =
  | { kind: "begin"; entity: string; full: boolean }
  | { kind: "page"; objects: { id: string; row: StoredJson[] }[]; removed: string[]; unchanged: string[] }
  | { kind: "end"; checkpoint: string | null };

/** What a download wrote: objects downloaded and removed, per entity, and which, for the watches. */
export interface Applied {
  downloaded: Record<string, number>;
  removed: Record<string, number>;
  touched: Map<string, Touched>;
}

/** One download being written. */
export class DownloadWriter {
  readonly #device: Device;
  #kept: Step[] = [];
  #keptObjects = 0;
  #open = false;
  #current: EntityApply | null = null;
  readonly #applied: Applied = { downloaded: {}, removed: {}, touched: new Map() };

  constructor(device: Device) {
    this.#device = device;
    device.downloadBegins();
  }

  /** True while the download's transaction is open (the app's calls wait for it). */
  get holdsTransaction(): boolean {
    return this.#open;
  }

  /** Takes one step. */
  write(step: Step): void {
    if (this.#open) {
      this.#apply(step);
      return;
    }
    this.#kept.push(step);
    if (step.kind === "page") this.#keptObjects += step.objects.length + step.removed.length + step.unchanged.length;
    if (this.#keptObjects > DOWNLOAD_BUFFERED_OBJECTS_MAX) this.#begin();
  }

  /** Commits the download; gives what it wrote. */
  commit(): Applied {
    if (!this.#open) this.#begin();
    // An entity the core never ended gets its indexes back all the same.
    this.#current?.restoreIndexes();
    forgetOldestRemoved(this.#device);
    this.#device.connection.exec("COMMIT");
    this.#end();
    this.#device.downloadEnds();
    return this.#applied;
  }

  /** Drops the download: nothing of it stays. */
  rollback(): void {
    this.#kept = [];
    this.#device.downloadEnds();
    if (!this.#open) return;
    try {
      this.#device.connection.exec("ROLLBACK");
    } finally {
      this.#end();
    }
  }

  /** Opens the transaction, taking the database's turn, and writes what was kept. */
  #begin(): void {
    this.#device.gate.hold();
    try {
      this.#device.connection.exec("BEGIN IMMEDIATE");
    } catch (error) {
      this.#device.gate.release();
      throw error;
    }
    this.#open = true;
    const kept = this.#kept;
    this.#kept = [];
    try {
      for (const step of kept) this.#apply(step);
    } catch (error) {
      this.rollback();
      throw error;
    }
  }

  #end(): void {
    this.#open = false;
    this.#device.gate.release();
  }

  #apply(step: Step): void {
    const device = this.#device;
    switch (step.kind) {
      case "begin":
        this.#current = new EntityApply(device, device.model.entity(step.entity), step.full);
        return;
      case "page":
        this.#current?.page(step.objects, step.removed, step.unchanged);
        return;
      case "end": {
        const apply = this.#current;
        this.#current = null;
        if (apply === null) return;
        const name = apply.entity.name;
        const { downloaded, removed, touched } = apply.finish();
        if (step.checkpoint !== null) device.setMeta(`${CHECKPOINT_PREFIX}${name}`, step.checkpoint);
        // Objects the server's fresh state took off the device may come back into view later
        // without changing: the checkpoint no longer says what the device holds, so the next
        // download of the entity starts over.
        else if (removed > 0) device.forgetMeta(`${CHECKPOINT_PREFIX}${name}`);
        this.#applied.downloaded[name] = (this.#applied.downloaded[name] ?? 0) + downloaded;
        this.#applied.removed[name] = (this.#applied.removed[name] ?? 0) + removed;
        if (downloaded + removed > 0) {
          const before = this.#applied.touched.get(name);
          if (before === "some") return;
          this.#applied.touched.set(name, new Set([...(before ?? []), ...touched]));
        }
      }
    }
  }
}

/** One entity's download being written. */
class EntityApply {
  readonly entity: EntityInfo;
  readonly #device: Device;
  /** Objects with unsynchronised changes on the device: downloads leave them as they are. */
  readonly #dirty: Set<string>;
  /** In a full download of an entity the device held objects of, the ids the server sent. */
  readonly #received: Set<string> | null;
  /** Whether the device held none of the entity's objects when its download began. */
  readonly #empty: boolean;
  /** The statements that make the indexes dropped for this download again, once they are dropped. */
  #dropped: string[] | null = null;
  #downloaded = 0;
  #removed = 0;
  readonly #touched = new Set<string>();

  constructor(device: Device, entity: EntityInfo, full: boolean) {
    this.#device = device;
    this.entity = entity;
    // The core names the behaviour `NothingPreserve` (or, by its keyword, `nothing-preserve`).
    const complete = full && entity.download !== "nothing-preserve";
    const held = holdsObjects(device, entity.table);
    this.#dirty = new Set(
      device.connection
        .all("SELECT object_id FROM ferry_dirty WHERE entity = ?1", [entity.name])
        .map((row) => idFromBytes(row[0] ?? null))
        .filter((id): id is string => id !== null),
    );
    this.#received = complete && held ? new Set() : null;
    this.#empty = !held;
  }

  page(objects: { id: string; row: StoredJson[] }[], removed: string[], unchanged: string[]): void {
    const device = this.#device;
    const sql = statements(device, this.entity.name);
    if (this.#empty && this.#dropped === null && objects.length >= INDEX_REBUILD_OBJECTS_MIN) {
      this.#dropped = dropIndexes(device, this.entity.table);
    }
    for (const object of objects) {
      // The row's first value is the id's stored form, `{"blob": hex}`.
      const first = object.row[0];
      const id = typeof first === "object" && first !== null && "blob" in first ? idFromHex(first.blob) : null;
      if (id === null) continue;
      this.#received?.add(id);
      if (this.#dirty.has(id)) continue;
      device.connection.run(sql.replace, bind(object.row));
      this.#downloaded += 1;
      this.#touched.add(id);
    }
    for (const id of unchanged) this.#received?.add(id.toLowerCase());
    for (const text of removed) {
      const id = text.toLowerCase();
      if (this.#dirty.has(id)) continue;
      let stored: Uint8Array;
      try {
        stored = device.storedId(id);
      } catch {
        continue;
      }
      this.#removed += device.connection.run(sql.deleteById, [stored]);
      this.#touched.add(id);
      rememberRemoved(device, this.entity.name, stored);
    }
  }

  /** Makes the indexes dropped for the download again (in its transaction, as they were dropped). */
  restoreIndexes(): void {
    const dropped = this.#dropped;
    this.#dropped = null;
    for (const statement of dropped ?? []) this.#device.connection.exec(statement);
  }

  /** Removes, after a full download, what the server no longer sends; makes the indexes dropped again. */
  finish(): { downloaded: number; removed: number; touched: Set<string> } {
    const device = this.#device;
    this.restoreIndexes();
    const received = this.#received;
    if (received !== null) {
      const sql = statements(device, this.entity.name);
      const gone = device.connection
        .all(sql.selectIds)
        .map((row) => row[0] ?? null)
        .filter((stored) => {
          const id = idFromBytes(stored);
          return id !== null && !received.has(id) && !this.#dirty.has(id);
        });
      for (const stored of gone) {
        this.#removed += device.connection.run(sql.deleteById, [stored]);
        this.#touched.add(idFromBytes(stored) ?? "");
        rememberRemoved(device, this.entity.name, stored as Uint8Array);
      }
    }
    return { downloaded: this.#downloaded, removed: this.#removed, touched: this.#touched };
  }
}

/**
 * Drops a table's secondary indexes (those made with `CREATE INDEX`, not unique ones, which
 * decide what an `INSERT OR REPLACE` replaces); gives the statements that make them again, as
 * the database itself keeps them.
 */
function dropIndexes(device: Device, table: string): string[] {
  const name = table.startsWith('"') ? table.slice(1, -1).replace(/""/g, '"') : table;
  const indexes = device.connection.all(
    "SELECT m.name, m.sql FROM pragma_index_list(?1) AS l JOIN sqlite_schema AS m ON m.type = 'index' AND m.name = l.name " +
      "WHERE l.origin = 'c' AND l.\"unique\" = 0 AND m.sql IS NOT NULL ORDER BY m.name",
    [name],
  );
  const statements: string[] = [];
  for (const [index, sql] of indexes) {
    device.connection.exec(`DROP INDEX "${String(index).replace(/"/g, '""')}"`);
    statements.push(String(sql));
  }
  return statements;
}
