/**
 * Errors of the SDK: one class, {@link FerryError}, whose `kind` says what went wrong and whose
 * other fields carry what a program acts on (the entity, the member, the HTTP status).
 *
 * @module
 */

/**
 * Why a call of the SDK was refused or failed. `kind` names the case; the message names the
 * entity, member, object or option concerned. A call that fails with bad input changed nothing.
 *
 * Kinds of the sync core (the fields of its error JSON come along): `cancelled`, `protocol`
 * (`server`, `device`), `unreachable` (`reason`), `not-signed-in`, `server` (`status`, `code`),
 * `integrity` and `selection-integrity` (`entity`, `id`, `association`, `target`),
 * `file-upload` (`entity`, `id`), `another-users-changes` (`count`), `unknown-entity`,
 * `corrupt`. Kinds of the SDK: `already-running`, `invalid-argument`, `model`,
 * `breaking-model`, `unknown-entity`, `unknown-member`, `wrong-type`, `deleted`, `validation`,
 * `delete-refused`, `delete-too-large`, `unsynced-changes`, `constraint`, `not-a-file-entity`,
 * `file-too-large`, `file-missing`, `bad-server`, `storage`, `closed`.
 *
 * @example
 * ```ts
 * try {
 *   db.set(order, "Priority", "high");
 * } catch (error) {
 *   if (error instanceof FerryError && error.kind === "wrong-type") console.log(error.member);
 * }
 * ```
 */
export class FerryError extends Error {
  /** What went wrong, as a short kebab-case name. */
  readonly kind: string;
  /** The entity concerned, when there is one. */
  readonly entity?: string;
  /** The member concerned, when there is one. */
  readonly member?: string;
  /** Every field of the error, as the sync core or the SDK gave them. */
  readonly fields: Readonly<Record<string, unknown>>;

  /**
   * @param kind what went wrong
   * @param message the sentence for a person
   * @param fields what a program acts on (copied onto the error as properties too)
   */
  constructor(kind: string, message: string, fields: Record<string, unknown> = {}) {
    super(message);
    this.name = "FerryError";
    this.kind = kind;
    this.fields = { ...fields };
    for (const [key, value] of Object.entries(fields)) {
      if (key !== "kind" && key !== "message" && key !== "name" && key !== "fields") {
        (this as Record<string, unknown>)[key] = value;
      }
    }
  }
}

/** The message of whatever was thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** An argument of a public call that is not what the call takes. */
export function invalid(message: string, fields: Record<string, unknown> = {}): FerryError {
  return new FerryError("invalid-argument", message, fields);
}

/**
 * Runs a call of the WebAssembly core, turning its error (a plain `Error` whose message names
 * the problem) into a {@link FerryError} of `kind`.
 */
export function fromCore<T>(kind: string, call: () => T, fields: Record<string, unknown> = {}): T {
  try {
    return call();
  } catch (error) {
    if (error instanceof FerryError) throw error;
    throw new FerryError(kind, messageOf(error), fields);
  }
}
