/**
 * The model as the SDK reads it: each entity's members (from the core's `entities()`), names
 * resolved as the Rust SDK resolves them (an association by its full name, or by its short name
 * without the module), and the delete behaviour of each association.
 *
 * @module
 */

import type { Core } from "./wasm.js";
import { FerryError } from "./errors.js";

/** A value in the app's JSON form: as on the wire (decimals and times as strings, ids as UUIDs, binary as base64). */
export type Value = null | string | number | boolean;

/** An object's values, by member name. */
export type Values = Record<string, Value>;

/** What deleting an association's target does to the objects that refer to it. */
export type DeleteBehaviour = "clear" | "delete" | "refuse";

/** A member of an entity: an attribute, or an owned association (a reference). */
export interface MemberInfo {
  /** The member's name (an association's full name, `Module.Name`). */
  readonly name: string;
  /** Its column in the entity's table (quoted). */
  readonly column: string;
  /** `string`, `integer`, `decimal`, `boolean`, `date-time`, `enumeration`, `binary` or `reference`. */
  readonly type: string;
  /** A reference's target entity. */
  readonly target: string | null;
  /** An enumeration's values. */
  readonly values: readonly string[] | null;
  /** What deleting a reference's target does (`clear` unless the model says otherwise). */
  readonly onDelete: DeleteBehaviour | null;
}

/** An entity of the model. */
export interface EntityInfo {
  /** The entity's name (`Module.Name`). */
  readonly name: string;
  /** `plain`, `file` (its objects carry file contents) or `system` (managed by the server). */
  readonly kind: "plain" | "file" | "system";
  /** Its download behaviour, as the model file names it (`all`, `constraint`, `nothing-clear`, `nothing-preserve`). */
  readonly download: string;
  /** Its table (quoted). */
  readonly table: string;
  /** Its members, in the order of its table's columns. */
  readonly members: readonly MemberInfo[];
}

interface CoreEntity {
  name: string;
  kind: string;
  download: string;
  table: string;
  members: { name: string; column: string; type: string; target: string | null; values: string[] | null; on_delete: string | null }[];
}

/** The model's entities, with the lookups the SDK makes of them. */
export class ModelInfo {
  /** Every entity, in reference order (targets first). */
  readonly entities: readonly EntityInfo[];
  readonly #byName = new Map<string, EntityInfo>();
  readonly #members = new Map<string, Map<string, MemberInfo>>();

  constructor(core: Core) {
    const described = JSON.parse(core.entities()) as CoreEntity[];
    this.entities = described.map((entity) => {
      const members = entity.members.map((member): MemberInfo => {
        const onDelete = member.type === "reference" ? ((member.on_delete ?? "clear") as DeleteBehaviour) : null;
        return {
          name: member.name,
          column: member.column,
          type: member.type,
          target: member.target,
          values: member.values,
          onDelete,
        };
      });
      const kind = entity.kind === "file" || entity.kind === "system" ? entity.kind : "plain";
      return { name: entity.name, kind, download: entity.download, table: entity.table, members };
    });
    for (const entity of this.entities) {
      this.#byName.set(entity.name, entity);
      const names = new Map<string, MemberInfo>();
      for (const member of entity.members) {
        names.set(member.name, member);
        // An association answers to its short name too, when that has no module (as in Rust).
        if (member.type === "reference") {
          const dot = member.name.indexOf(".");
          const short = dot >= 0 ? member.name.slice(dot + 1) : member.name;
          if (!names.has(short)) names.set(short, member);
        }
      }
      this.#members.set(entity.name, names);
    }
  }

  /** The entity named, or `null`. */
  find(name: string): EntityInfo | null {
    return this.#byName.get(name) ?? null;
  }

  /** The entity named, or an error naming it. */
  entity(name: unknown): EntityInfo {
    const found = typeof name === "string" ? this.#byName.get(name) : undefined;
    if (found === undefined) throw new FerryError("unknown-entity", `unknown entity \`${String(name)}\``, { entity: name });
    return found;
  }

  /** An entity the app makes objects of (not a system entity), or an error naming it. */
  appEntity(name: unknown): EntityInfo {
    const entity = this.entity(name);
    if (entity.kind === "system") {
      throw new FerryError("unknown-entity", `unknown entity \`${entity.name}\`: its objects are the server's to make`, {
        entity: entity.name,
      });
    }
    return entity;
  }

  /** A member of `entity` by its name (or an association's short name), or an error naming both. */
  member(entity: EntityInfo, name: unknown): MemberInfo {
    const found = typeof name === "string" ? this.#members.get(entity.name)?.get(name) : undefined;
    if (found === undefined) {
      throw new FerryError("unknown-member", `\`${entity.name}\` has no member \`${String(name)}\``, {
        entity: entity.name,
        member: name,
      });
    }
    return found;
  }

  /** The associations of other entities (not system ones) that refer to `target`. */
  referrers(target: string): { owner: EntityInfo; member: MemberInfo }[] {
    const found: { owner: EntityInfo; member: MemberInfo }[] = [];
    for (const owner of this.entities) {
      if (owner.kind === "system") continue;
      for (const member of owner.members) {
        if (member.type === "reference" && member.target === target) found.push({ owner, member });
      }
    }
    return found;
  }
}
