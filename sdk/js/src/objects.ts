/**
 * Objects in the app: made, changed, committed, rolled back and deleted. Changes live in the
 * {@link FerryObject} until a commit writes them; the database records which committed members
 * are dirty (not yet uploaded) in `ferry_dirty`, with the Rust SDK's rules
 * (`crates/ferry-client/src/object.rs`), so a sync sends exactly those.
 *
 * @module
 */

import type { Device, Touched } from "./device.js";
import { memberStatement, statements } from "./device.js";
import { FerryError, fromCore, invalid, messageOf } from "./errors.js";
import type { EntityInfo, MemberInfo, ModelInfo, Value, Values } from "./model.js";
import type { Core } from "./wasm.js";
import type { SqlValue, StoredJson } from "./storage.js";
import { idFromBytes, toSql } from "./storage.js";

/**
 * An object as the app holds it: plain data (it crosses to and from a Worker as it is).
 * Change its values with {@link Database.set}, which checks each against its member's type.
 *
 * @example
 * ```ts
 * const order = db.create("Field.WorkOrder");
 * db.set(order, "Title", "Fix the pump");
 * order.values.Status; // "Open", the model's default
 * ```
 */
export interface FerryObject {
  /** The object's entity (`Module.Name`). */
  readonly entity: string;
  /** The object's id (UUID form), made on the device; it never changes. */
  readonly id: string;
  /** The current values, committed or not, by member name (associations by their full name). */
  values: Values;
  /** The values as last committed on the device; `null` until the object is first committed. */
  committed: Values | null;
  /** True once the object was deleted; it cannot be changed or committed again. */
  deleted: boolean;
}

/**
 * What deleting an object left for the server to learn: `discarded` (it was never committed:
 * nothing happened in the database), `removed` (committed but never uploaded: gone without a
 * trace), `recorded` (the server knows it: the deletion is uploaded with the next sync).
 */
export type Deletion = "discarded" | "removed" | "recorded";

/** The most objects one deletion may take with it through associations that delete their referrers. */
export const DELETE_CASCADE_OBJECTS_MAX = 10_000;

/** True for a value shaped as a {@link FerryObject}. */
export function isFerryObject(value: unknown): value is FerryObject {
  if (typeof value !== "object" || value === null) return false;
  const object = value as Partial<FerryObject>;
  return typeof object.entity === "string" && typeof object.id === "string" && typeof object.values === "object" && object.values !== null;
}

/** The object argument of a call, or an error saying what it takes. */
export function objectArgument(value: unknown, call: string): FerryObject {
  if (!isFerryObject(value)) {
    throw invalid(`${call} takes an object of the database (from create, find or query), not ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (Array.isArray(value)) return "an array";
  return typeof value === "object" ? "an object without entity, id and values" : `the ${typeof value} ${JSON.stringify(value)}`;
}

/** A copy of some values. */
export function copyValues(values: Values): Values {
  return { ...values };
}

/** A value in the app's JSON form from what the app passed: a `Date` for a date-time, bytes for binary, an object for a reference. */
export function appValue(entity: EntityInfo, member: MemberInfo, value: unknown): Value {
  if (value === undefined) {
    throw new FerryError("wrong-type", `\`${member.name}\` of \`${entity.name}\`: no value given (use null to empty it)`, {
      entity: entity.name,
      member: member.name,
    });
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "invalid date" : value.toISOString();
  if (value instanceof Uint8Array) return base64(value);
  if (isFerryObject(value)) {
    if (member.type !== "reference" || value.entity !== member.target) {
      throw new FerryError(
        "wrong-type",
        `\`${member.name}\` of \`${entity.name}\` takes ${member.type === "reference" ? `a \`${member.target}\`` : `a ${member.type}`}, not a \`${value.entity}\` object`,
        { entity: entity.name, member: member.name },
      );
    }
    return value.id;
  }
  if (value !== null && typeof value !== "string" && typeof value !== "number" && typeof value !== "boolean") {
    throw new FerryError("wrong-type", `\`${member.name}\` of \`${entity.name}\` takes a ${member.type}, not ${describe(value)}`, {
      entity: entity.name,
      member: member.name,
    });
  }
  return value;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** A model and its core: what object calls that touch no storage need (a device, or a page talking to a Worker). */
export interface ModelAccess {
  readonly core: Core;
  readonly model: ModelInfo;
}

/** `value` checked against the member's type by the core: its normalised form (a decimal at its scale). */
export function typed(device: ModelAccess, entity: EntityInfo, member: MemberInfo, value: Value): Value {
  const text = JSON.stringify(value);
  return fromCore("wrong-type", () => JSON.parse(device.core.typed(entity.name, member.name, text)) as Value, {
    entity: entity.name,
    member: member.name,
  });
}

/** The members whose current value differs from the committed one, in the order of the table. */
export function changedMembers(entity: EntityInfo, object: FerryObject, values: Values): string[] {
  const committed = object.committed ?? {};
  return entity.members
    .filter((member) => JSON.stringify(committed[member.name] ?? null) !== JSON.stringify(values[member.name] ?? null))
    .map((member) => member.name);
}

/** Binds stored values in the core's JSON form. */
export function bind(values: readonly StoredJson[]): SqlValue[] {
  return values.map(toSql);
}

/**
 * Writes the objects' changes (already snapshotted: `values`) inside the caller's transaction:
 * a new object is inserted and recorded as a creation of every member, a committed one updated
 * in its changed members, which its dirty record gains. Validation rules are checked first:
 * every rule for a new object, the changed members' for a committed one (`unique` needs the
 * server's data and is left to it).
 */
export function writeCommit(device: Device, object: FerryObject, values: Values): boolean {
  const entity = device.model.appEntity(object.entity);
  if (object.deleted) throw new FerryError("deleted", `\`${entity.name}\` ${object.id} was deleted`, { entity: entity.name, id: object.id });
  const changed = object.committed === null ? null : changedMembers(entity, object, values);
  if (changed !== null && changed.length === 0) return false;
  const complete: Values = {};
  for (const member of entity.members) complete[member.name] = values[member.name] ?? null;
  try {
    device.core.check(entity.name, JSON.stringify(complete), changed === null ? null : JSON.stringify(changed));
  } catch (error) {
    const rule = messageOf(error).replace(`\`${entity.name}\`: `, "");
    throw new FerryError("validation", `\`${entity.name}\` ${object.id} cannot be committed: ${rule}`, {
      entity: entity.name,
      id: object.id,
      rule,
    });
  }
  const sql = statements(device, entity.name);
  const id = device.storedId(object.id);
  if (changed === null) {
    const row = fromCore(
      "wrong-type",
      () => JSON.parse(device.core.row(entity.name, object.id, JSON.stringify(complete), 0n)) as StoredJson[],
      { entity: entity.name },
    );
    device.connection.run(sql.insert, bind(row));
    markDirty(device, entity, id, "create", entity.members.map((member) => member.name));
  } else {
    const changedValues: Values = {};
    for (const name of changed) changedValues[name] = complete[name] ?? null;
    const params = fromCore(
      "wrong-type",
      () => JSON.parse(device.core.params(entity.name, JSON.stringify(changedValues))) as [string, string, StoredJson][],
      { entity: entity.name },
    );
    const update = memberStatement(device, "update", entity.name, params.map(([member]) => member));
    const updated = device.connection.run(update, [...bind(params.map(([, , stored]) => stored)), id]);
    if (updated === 0) {
      throw new FerryError("deleted", `\`${entity.name}\` ${object.id} is no longer on this device`, { entity: entity.name, id: object.id });
    }
    markDirty(device, entity, id, "update", changed);
  }
  return true;
}

/** Records committed changes in `ferry_dirty`: a new object stays a creation; an update adds its members. */
function markDirty(device: Device, entity: EntityInfo, id: Uint8Array, kind: string, members: string[]): void {
  const existing = device.connection.all("SELECT kind, members FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2", [entity.name, id])[0];
  let record: [string, string];
  if (existing !== undefined) {
    const all = new Set(String(existing[1]).split(",").filter((member) => member !== ""));
    for (const member of members) all.add(member);
    record = [String(existing[0]), sortedByBytes([...all]).join(",")];
  } else {
    record = [kind, members.join(",")];
  }
  const revision = device.connection.all(`SELECT _rev FROM ${entity.table} WHERE id = ?1`, [id])[0]?.[0] ?? null;
  device.connection.run(
    "INSERT INTO ferry_dirty (entity, object_id, kind, members, base_revision) VALUES (?1, ?2, ?3, ?4, ?5) " +
      "ON CONFLICT (entity, object_id) DO UPDATE SET kind = excluded.kind, members = excluded.members",
    [entity.name, id, record[0], record[1], revision],
  );
}

/** Strings in the order of their UTF-8 bytes (as Rust's `BTreeSet<&str>` keeps them). */
export function sortedByBytes(names: string[]): string[] {
  const encoder = new TextEncoder();
  return names
    .map((name) => ({ name, bytes: encoder.encode(name) }))
    .sort((a, b) => {
      for (let i = 0; i < Math.min(a.bytes.length, b.bytes.length); i++) {
        if (a.bytes[i] !== b.bytes[i]) return (a.bytes[i] ?? 0) - (b.bytes[i] ?? 0);
      }
      return a.bytes.length - b.bytes.length;
    })
    .map(({ name }) => name);
}

/**
 * Deletes a committed object inside the caller's transaction, following the delete behaviour
 * of the associations that point at it over the objects on the device: references are cleared,
 * referring objects deleted too, or the deletion refused (and nothing changes). Gives the
 * deletion of the object itself and what the write touched.
 */
export function writeDelete(device: Device, entity: EntityInfo, objectId: string): { deletion: Deletion; touched: Map<string, Touched> } {
  const touched = new Map<string, Touched>();
  const touch = (name: string, id: string | null) => {
    const found = touched.get(name);
    if (id === null) touched.set(name, "some");
    else if (found === undefined) touched.set(name, new Set([id]));
    else if (found !== "some") found.add(id);
  };
  const cascade = followDeleteBehaviour(device, entity, objectId, touch);
  for (const [owner, referrer] of cascade) {
    deleteRow(device, owner, referrer);
    touch(owner.name, referrer);
  }
  const deletion = deleteRow(device, entity, objectId);
  touch(entity.name, objectId);
  return { deletion, touched };
}

function followDeleteBehaviour(
  device: Device,
  entity: EntityInfo,
  objectId: string,
  touch: (entity: string, id: string | null) => void,
): [EntityInfo, string][] {
  const reached = new Set([objectId]);
  const cascade: [EntityInfo, string][] = [];
  const work: [EntityInfo, string][] = [[entity, objectId]];
  for (let next = work.pop(); next !== undefined; next = work.pop()) {
    const [targetEntity, target] = next;
    const targetId = device.storedId(target);
    for (const { owner, member } of device.model.referrers(targetEntity.name)) {
      const found = device.connection
        .all(`SELECT id FROM ${owner.table} WHERE ${member.column} = ?1`, [targetId])
        .map((row) => idFromBytes(row[0] ?? null))
        .filter((id): id is string => id !== null && !reached.has(id));
      if (found.length === 0) continue;
      switch (member.onDelete) {
        case "refuse":
          throw new FerryError(
            "delete-refused",
            `\`${targetEntity.name}\` ${target} cannot be deleted: ${found.length} \`${owner.name}\` objects refer to it through \`${member.name}\`, which refuses its deletion while any does`,
            { entity: targetEntity.name, id: target, referrers: found.length, referrerEntity: owner.name, association: member.name },
          );
        case "delete":
          if (cascade.length + found.length > DELETE_CASCADE_OBJECTS_MAX) {
            throw new FerryError(
              "delete-too-large",
              `\`${entity.name}\` ${objectId} cannot be deleted: it would take more than ${DELETE_CASCADE_OBJECTS_MAX} referring objects with it`,
              { entity: entity.name, id: objectId, max: DELETE_CASCADE_OBJECTS_MAX },
            );
          }
          for (const referrer of found) {
            reached.add(referrer);
            cascade.push([owner, referrer]);
            work.push([owner, referrer]);
          }
          break;
        default:
          // Here as the server will: it clears its copies when it applies the deletion, and
          // the next download brings them.
          device.connection.run(`UPDATE ${owner.table} SET ${member.column} = NULL WHERE ${member.column} = ?1`, [targetId]);
          touch(owner.name, null);
      }
    }
  }
  return cascade;
}

/** Deletes one object's row, and records the deletion when the server knows the object. */
function deleteRow(device: Device, entity: EntityInfo, objectId: string): Deletion {
  const id = device.storedId(objectId);
  const dirty = device.connection.all("SELECT kind FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2", [entity.name, id])[0]?.[0];
  const revision = device.connection.all(`SELECT _rev FROM ${entity.table} WHERE id = ?1`, [id])[0]?.[0];
  if (revision === undefined) {
    throw new FerryError("deleted", `\`${entity.name}\` ${objectId} is no longer on this device`, { entity: entity.name, id: objectId });
  }
  device.connection.run(`DELETE FROM ${entity.table} WHERE id = ?1`, [id]);
  if (dirty === "create") {
    device.connection.run("DELETE FROM ferry_dirty WHERE entity = ?1 AND object_id = ?2", [entity.name, id]);
    return "removed";
  }
  device.connection.run(
    "INSERT INTO ferry_dirty (entity, object_id, kind, members, base_revision) VALUES (?1, ?2, 'delete', '', ?3) " +
      "ON CONFLICT (entity, object_id) DO UPDATE SET kind = 'delete', members = '', base_revision = excluded.base_revision",
    [entity.name, id, revision],
  );
  return "recorded";
}

/** A new object of `entity` with the model's defaults, not committed. */
export function createObject(access: ModelAccess, entity: string): FerryObject {
  const info = access.model.appEntity(entity);
  const id = access.core.newId(Date.now(), crypto.getRandomValues(new Uint8Array(16)));
  const values = JSON.parse(access.core.defaults(info.name)) as Values;
  return { entity: info.name, id, values, committed: null, deleted: false };
}

/** Sets a member in the object, checked against its type. */
export function setValue(access: ModelAccess, object: unknown, member: string, value: unknown): void {
  const target = objectArgument(object, "set");
  const entity = access.model.appEntity(target.entity);
  const found = access.model.member(entity, member);
  if (target.deleted) throw new FerryError("deleted", `\`${entity.name}\` ${target.id} was deleted`, { entity: entity.name, id: target.id });
  target.values[found.name] = typed(access, entity, found, appValue(entity, found, value));
}

/** The current value of a member. */
export function getValue(access: ModelAccess, object: unknown, member: string): Value {
  const target = objectArgument(object, "get");
  const entity = access.model.entity(target.entity);
  return target.values[access.model.member(entity, member).name] ?? null;
}

/** Returns the object to its committed state (a new one to its defaults). */
export function rollbackObject(access: ModelAccess, object: unknown): void {
  const target = objectArgument(object, "rollback");
  const entity = access.model.appEntity(target.entity);
  target.values = target.committed !== null ? copyValues(target.committed) : (JSON.parse(access.core.defaults(entity.name)) as Values);
}
