/**
 * The local store of a sync: every statement the shell runs against the device database for
 * the sync core, apart from the download's writer (`download.ts`), as the Rust SDK runs them
 * (`crates/ferry-client/src/sync/store.rs`, `action.rs`). Model-dependent SQL comes from the
 * core; the device's state goes through the keys of {@link Meta}.
 *
 * @module
 */

import type { Device, Touched } from "../device.js";
import { CHECKPOINT_PREFIX, Meta, memberStatement, statements } from "../device.js";
import { FerryError } from "../errors.js";
import type { Values } from "../model.js";
import { bind, sortedByBytes } from "../objects.js";
import type { StoredJson } from "../storage.js";
import { hex, idFromBytes } from "../storage.js";

/** Ids looked up in one local query. */
const IDS_PER_QUERY = 500;

/** How many removed objects the device remembers, the latest (see `ferry_removed`). */
export const REMOVED_REMEMBERED_MAX = 100_000;

/** A change of the upload, as the wire writes it. */
export interface ObjectChange {
  entity: string;
  id: string;
  kind: "create" | "update" | "delete";
  base_revision?: number;
  values: Values;
}

/** An upload, as the wire writes it. */
export interface UploadRequest {
  upload_id: string;
  device: string;
  changes: ObjectChange[];
}

/** The upload an earlier attempt stored and did not finish. */
export function pendingUpload(device: Device): UploadRequest | null {
  const text = device.meta(Meta.pendingUpload);
  if (text === null) return null;
  try {
    return JSON.parse(text) as UploadRequest;
  } catch (error) {
    throw new FerryError("corrupt", `the device database is damaged: the pending upload: ${String(error)}`);
  }
}

/** Every dirty object's change, in the order of entity and id, with its changed members' committed values. */
export function dirtyChanges(device: Device): ObjectChange[] {
  const records = device.connection.all("SELECT entity, object_id, kind, members, base_revision FROM ferry_dirty ORDER BY entity, object_id");
  const changes = records.map(([entityName, objectId, kind, members, baseRevision]) => {
    const entity = device.model.find(String(entityName));
    const id = idFromBytes(objectId ?? null);
    if (entity === null || id === null) {
      throw new FerryError("corrupt", `the device database is damaged: a dirty object of \`${String(entityName)}\``);
    }
    const changeKind = kind === "create" || kind === "update" ? kind : "delete";
    const change: ObjectChange = { entity: entity.name, id, kind: changeKind, values: {} };
    if (baseRevision !== null && baseRevision !== undefined) change.base_revision = Number(baseRevision);
    return { change, stored: objectId as Uint8Array, members: changeKind === "delete" ? [] : String(members).split(",") };
  });
  // The committed values, read entity by entity: the rows one query each, then read in one call of the core.
  let at = 0;
  while (at < changes.length) {
    const entity = changes[at]?.change.entity ?? "";
    let end = at;
    while (end < changes.length && changes[end]?.change.entity === entity) end += 1;
    const group = changes.slice(at, end).filter((dirty) => dirty.change.kind !== "delete");
    at = end;
    if (group.length === 0) continue;
    const selectById = statements(device, entity).selectById;
    const rows = group.map((dirty) => {
      const row = device.connection.all(selectById, [dirty.stored])[0];
      if (row === undefined) throw new FerryError("corrupt", `the device database is damaged: dirty \`${entity}\` ${dirty.change.id} is not in its table`);
      return row;
    });
    device.read(entity, rows).forEach((stored, index) => {
      const dirty = group[index];
      if (dirty === undefined) return;
      for (const member of dirty.members) {
        if (member !== "" && member in stored.values) dirty.change.values[member] = stored.values[member] ?? null;
      }
    });
  }
  return changes.map((dirty) => dirty.change);
}

/** 32 random hex digits: device names and upload ids. */
export function randomToken(): string {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

/** This device's name on the server, made the first time it is asked. */
export function deviceName(device: Device): string {
  const name = device.meta(Meta.device);
  if (name !== null) return name;
  const made = randomToken();
  device.setMeta(Meta.device, made);
  return made;
}

/** What the device holds of each object: held, created here and not uploaded, removed lately. */
export function lookUp(device: Device, targets: [string, string][]): { held: boolean; created_here: boolean; removed: boolean }[] {
  return targets.map(([entityName, id]) => {
    const entity = device.model.entity(entityName);
    const stored = device.storedId(id);
    const held = Number(device.connection.all(statements(device, entity.name).countById, [stored])[0]?.[0] ?? 0) > 0;
    const createdHere =
      Number(
        device.connection.all("SELECT count(*) FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2 AND kind = 'create'", [entity.name, stored])[0]?.[0] ?? 0,
      ) > 0;
    const removed =
      Number(device.connection.all("SELECT count(*) FROM ferry_removed WHERE entity = ?1 AND object_id = ?2", [entity.name, stored])[0]?.[0] ?? 0) > 0;
    return { held, created_here: createdHere, removed };
  });
}

/** True when the device holds any object of the entity. */
export function holdsObjects(device: Device, table: string): boolean {
  return Number(device.connection.all(`SELECT EXISTS (SELECT 1 FROM ${table})`)[0]?.[0] ?? 0) > 0;
}

/** An entity's checkpoint, and whether the device holds objects of it. */
export function entityState(device: Device, entityName: string): { checkpoint: string | null; holds_objects: boolean } {
  const entity = device.model.entity(entityName);
  // After a restore of the server's data, a full download asks no index.
  const withoutIndex = device.meta(Meta.downloadWithoutIndex) !== null;
  return { checkpoint: device.meta(`${CHECKPOINT_PREFIX}${entity.name}`), holds_objects: !withoutIndex && holdsObjects(device, entity.table) };
}

/** The revisions the device holds of these objects (those it does not hold are absent). */
export function revisions(device: Device, entityName: string, ids: string[]): Record<string, number> {
  const entity = device.model.entity(entityName);
  const held: Record<string, number> = {};
  const stored = ids.flatMap((id) => {
    try {
      return [device.storedId(id)];
    } catch {
      return [];
    }
  });
  for (let at = 0; at < stored.length; at += IDS_PER_QUERY) {
    const chunk = stored.slice(at, at + IDS_PER_QUERY);
    for (const [id, revision] of device.connection.all(device.core.revisionsStatement(entity.name, chunk.length), chunk)) {
      const text = idFromBytes(id ?? null);
      if (text !== null) held[text] = Number(revision);
    }
  }
  return held;
}

/** Keeps a session's access token and refresh token (none: the server gave none). */
function keepSession(device: Device, token: string, refreshToken: string | null, roles: readonly string[]): void {
  device.setMeta(Meta.token, token);
  device.setMeta(Meta.roles, JSON.stringify(roles));
  if (refreshToken !== null && refreshToken !== undefined) device.setMeta(Meta.refreshToken, refreshToken);
  else device.forgetMeta(Meta.refreshToken);
}

/** A write of the sync core (its `store` action), as the wire writes it. */
export type StoreWrite =
  | { kind: "pending-upload"; request: UploadRequest }
  | { kind: "upload-answered"; request: UploadRequest; response: UploadResponse; fresh: Fresh[] }
  | { kind: "full-sync-due" }
  | { kind: "signed-in"; token: string; refresh_token: string | null; user: string; roles: string[]; forget_previous: boolean }
  | { kind: "refreshed"; token: string; refresh_token: string | null; roles: string[] }
  | { kind: "restored"; epoch: string; lost: LostChange[]; forget: number[] }
  | { kind: "full-sync-done" }
  | { kind: "last-sync"; at: string; mode: string };

/** A change a restore of the server's data lost, to make dirty again (see `ferry_sync::restore`). */
export interface LostChange {
  entity: string;
  id: string;
  kind: "create" | "update" | "delete";
  members: string[];
  base_revision: number | null;
}

/** A row of the upload journal (`ferry_sql::journal`), as the core reads it. */
export interface JournalRow {
  row: number;
  entity: string;
  id: string;
  kind: "create" | "update" | "delete";
  members: string[];
  base_revision: number | null;
  epoch: string;
  seq: number;
}

/** An upload's answer: one outcome per change, in the request's order. */
export interface UploadResponse {
  upload_id: string;
  outcomes: { entity: string; id: string; outcome: string }[];
  /** The upload's place in the server's change sequence (older servers give none). */
  position?: { epoch: string; seq: number };
}

/** The fresh state the server answered for an applied change, as columns and stored values. */
export interface Fresh {
  entity: string;
  id: string;
  revision: number;
  members: [string, string, StoredJson][];
}

/** Performs a write of the sync core; gives the objects it touched, for the watches. */
export function write(device: Device, server: string, store: StoreWrite): void {
  switch (store.kind) {
    case "pending-upload":
      device.setMeta(Meta.pendingUpload, JSON.stringify(store.request));
      return;
    case "upload-answered":
      uploadAnswered(device, store.request, store.response, store.fresh);
      return;
    case "full-sync-due":
      device.setMeta(Meta.fullSyncNeeded, "1");
      return;
    case "signed-in":
      signedIn(device, server, store, store.forget_previous);
      return;
    case "refreshed":
      device.transaction(() => keepSession(device, store.token, store.refresh_token, store.roles));
      return;
    case "restored":
      restored(device, store.epoch, store.lost, store.forget);
      return;
    case "full-sync-done":
      device.forgetMeta(Meta.fullSyncNeeded);
      device.forgetMeta(Meta.downloadWithoutIndex);
      return;
    case "last-sync":
      device.setMeta(Meta.lastSync, `${store.at} ${store.mode}`);
      return;
  }
}

/**
 * In one transaction: the previous user's objects and checkpoints leave the device when
 * `forgetPrevious`, and the new user's token, id and server are kept.
 */
function signedIn(
  device: Device,
  server: string,
  session: { token: string; refresh_token: string | null; user: string; roles: string[] },
  forgetPrevious: boolean,
): void {
  device.transaction(() => {
    if (forgetPrevious) {
      for (const entity of device.model.entities) {
        if (entity.kind !== "system") device.connection.run(`DELETE FROM ${entity.table}`);
      }
      device.connection.run("DELETE FROM ferry_meta WHERE key LIKE ?1", [`${CHECKPOINT_PREFIX}%`]);
      // What this device uploaded for the previous user is not the new one's to send again.
      device.connection.run(journalStatements(device).forget_all);
    }
    keepSession(device, session.token, session.refresh_token, session.roles);
    device.setMeta(Meta.user, session.user);
    device.setMeta(Meta.server, server);
  });
  if (forgetPrevious) device.tellEntities(device.model.entities.map((entity) => entity.name), false);
}

/**
 * In one transaction: forgets what was sent from each object's dirty record, writes the fresh
 * state of applied objects (keeping members changed and committed again since), and drops the
 * pending upload.
 */
function uploadAnswered(device: Device, request: UploadRequest, response: UploadResponse, fresh: Fresh[]): void {
  const freshOf = new Map(fresh.map((state) => [`${state.entity}\u0000${state.id}`, state]));
  device.transaction(() => {
    request.changes.forEach((change, index) => {
      const entity = device.model.find(change.entity);
      if (entity === null) throw new FerryError("corrupt", `the device database is damaged: the pending upload names \`${change.entity}\``);
      const id = device.storedId(change.id);
      const stillDirty = forgetSent(device, entity.name, id, new Set(Object.keys(change.values)));
      const outcome = response.outcomes[index];
      const state = freshOf.get(`${change.entity}\u0000${change.id}`);
      if (outcome?.outcome === "applied" && state !== undefined) {
        const members = state.members.filter(([member]) => !stillDirty.has(member));
        const sql = memberStatement(device, "refresh", entity.name, members.map(([member]) => member));
        device.connection.run(sql, [...bind(members.map(([, , stored]) => stored)), state.revision, id]);
      }
    });
    journalUpload(device, request, response);
    device.forgetMeta(Meta.pendingUpload);
  });
  device.tellObjects(
    request.changes.map((change) => [change.entity, change.id] as const),
    false,
  );
}

/** The upload journal's statements, from the core. */
interface JournalStatements {
  insert: string;
  prune: string;
  read: string;
  forget: string;
  forget_all: string;
  retention_days: number;
}

/** The statements, read from each core once. */
const journalStatementsOf = new WeakMap<object, JournalStatements>();

function journalStatements(device: Device): JournalStatements {
  let found = journalStatementsOf.get(device.core);
  if (found === undefined) {
    found = JSON.parse(device.core.journalStatements()) as JournalStatements;
    journalStatementsOf.set(device.core, found);
  }
  return found;
}

/** Journals the changes the server applied in this upload, when its answer gives the upload's position; forgets rows past the journal's retention. */
function journalUpload(device: Device, request: UploadRequest, response: UploadResponse): void {
  const position = response.position;
  if (position === undefined) return;
  const sql = journalStatements(device);
  const now = Date.now() * 1000;
  request.changes.forEach((change, index) => {
    if (response.outcomes[index]?.outcome === "failed") return;
    const members = Object.keys(change.values).join(",");
    device.connection.run(sql.insert, [change.entity, device.storedId(change.id), change.kind, members, change.base_revision ?? null, position.epoch, position.seq, now]);
  });
  device.connection.run(sql.prune, [now - sql.retention_days * 86_400_000_000]);
}

/** The upload journal's rows of other epochs than `epoch`, in the order they were journaled. */
export function journal(device: Device, epoch: string): JournalRow[] {
  return device.connection.all(journalStatements(device).read, [epoch]).map((row) => ({
    row: Number(row[0]),
    entity: String(row[1]),
    id: idFromBytes(row[2] ?? null) ?? "",
    kind: String(row[3]) as JournalRow["kind"],
    members: String(row[4])
      .split(",")
      .filter((member) => member !== ""),
    base_revision: row[5] === null || row[5] === undefined ? null : Number(row[5]),
    epoch: String(row[6]),
    seq: Number(row[7]),
  }));
}

/**
 * In one transaction: the changes a restore of the server's data lost are dirty again (joined
 * with each object's dirty record), their journal rows forgotten, the epoch kept, every
 * checkpoint forgotten, and the next downloads made full without an index.
 */
function restored(device: Device, epoch: string, lost: LostChange[], forget: number[]): void {
  const touched: [string, string][] = [];
  device.transaction(() => {
    for (const change of lost) {
      const entity = device.model.find(change.entity);
      if (entity === null) continue;
      if (dirtyAgain(device, entity.name, entity.table, change)) touched.push([entity.name, change.id]);
    }
    const sql = journalStatements(device);
    for (const row of forget) device.connection.run(sql.forget, [row]);
    device.setMeta(Meta.serverEpoch, epoch);
    device.setMeta(Meta.downloadWithoutIndex, "1");
    device.connection.run("DELETE FROM ferry_meta WHERE key LIKE ?1", [`${CHECKPOINT_PREFIX}%`]);
  });
  device.tellObjects(touched, false);
}

/**
 * Joins a lost change with the object's dirty record: a creation or a deletion recorded since
 * stays one; otherwise the lost change's kind; its members join the record's, and its base
 * revision (the restored server's) replaces the record's. A change of an object the device no
 * longer holds is passed over, unless a deletion. Gives true when written.
 */
function dirtyAgain(device: Device, entity: string, table: string, change: LostChange): boolean {
  const id = device.storedId(change.id);
  const held = device.connection.all(`SELECT count(*) FROM ${table} WHERE id = ?1`, [id])[0]?.[0];
  if ((Number(held ?? 0) > 0) === (change.kind === "delete")) return false;
  const existing = device.connection.all("SELECT kind, members FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2", [entity, id])[0];
  const existingKind = existing === undefined ? null : String(existing[0]);
  const kind = existingKind === "create" || existingKind === "delete" ? existingKind : change.kind;
  let members = "";
  if (kind !== "delete") {
    const all = new Set(existing === undefined ? [] : String(existing[1]).split(",").filter((member) => member !== ""));
    for (const member of change.members) all.add(member);
    members = sortedByBytes([...all]).join(",");
  }
  device.connection.run(
    "INSERT INTO ferry_dirty (entity, object_id, kind, members, base_revision) VALUES (?1, ?2, ?3, ?4, ?5) " +
      "ON CONFLICT (entity, object_id) DO UPDATE SET kind = excluded.kind, members = excluded.members, base_revision = excluded.base_revision",
    [entity, id, kind, members, change.base_revision],
  );
  return true;
}

/** Removes what was sent from the object's dirty record; gives the members still dirty (committed again meanwhile). */
function forgetSent(device: Device, entity: string, id: Uint8Array, sent: Set<string>): Set<string> {
  const record = device.connection.all("SELECT kind, members FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2", [entity, id])[0];
  if (record === undefined) return new Set();
  const remaining = String(record[1])
    .split(",")
    .filter((member) => member !== "" && !sent.has(member));
  if (remaining.length === 0 || record[0] === "delete") {
    device.connection.run("DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2", [entity, id]);
    return new Set();
  }
  device.connection.run("UPDATE ferry_dirty SET kind = 'update', members = ?3 WHERE entity = ?1 AND object_id = ?2", [
    entity,
    id,
    remaining.join(","),
  ]);
  return new Set(remaining);
}

/** Remembers an object a download or an action removed (while changes wait for upload, a change may refer to it). */
export function rememberRemoved(device: Device, entity: string, id: Uint8Array): void {
  device.connection.run("INSERT OR IGNORE INTO ferry_removed (entity, object_id) VALUES (?1, ?2)", [entity, id]);
}

/** Keeps the {@link REMOVED_REMEMBERED_MAX} objects removed last. */
export function forgetOldestRemoved(device: Device): void {
  device.connection.run("DELETE FROM ferry_removed WHERE rowid <= (SELECT max(rowid) FROM ferry_removed) - ?1", [REMOVED_REMEMBERED_MAX]);
}

/** An object a server action synchronised, as the wire writes it: its row for the entity's `replace`. */
export interface SyncedRow {
  entity: string;
  id: string;
  row: StoredJson[];
}

/**
 * Writes what a server action synchronised, in one transaction: objects overwrite the device's
 * copies and lose their dirty records; removed ones are deleted (an entity the device does not
 * know, or not a plain one, is passed over). Gives the objects removed, per entity.
 */
export function applySynced(device: Device, synced: SyncedRow[], removed: { entity: string; id: string }[]): Record<string, number> {
  const gone: Record<string, number> = {};
  const touched = new Map<string, Touched>();
  const touch = (entity: string, id: string) => {
    const found = touched.get(entity);
    if (found === undefined) touched.set(entity, new Set([id]));
    else if (found !== "some") found.add(id);
  };
  const forget = "DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2";
  device.transaction(() => {
    for (const object of synced) {
      const entity = device.model.find(object.entity);
      if (entity === null || entity.kind !== "plain") continue; // the sync core refuses an answer naming such an object
      const row = bind(object.row);
      device.connection.run(statements(device, entity.name).replace, row);
      device.connection.run(forget, [entity.name, row[0] ?? null]);
      touch(entity.name, object.id);
    }
    for (const key of removed) {
      const entity = device.model.find(key.entity);
      let id: Uint8Array;
      try {
        id = device.storedId(key.id);
      } catch {
        continue;
      }
      if (entity === null) continue;
      gone[entity.name] = (gone[entity.name] ?? 0) + device.connection.run(statements(device, entity.name).deleteById, [id]);
      rememberRemoved(device, entity.name, id);
      device.connection.run(forget, [entity.name, id]);
      touch(entity.name, key.id);
    }
  });
  device.tell(touched, false);
  return gone;
}
