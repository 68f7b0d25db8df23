/**
 * The sync engine ({@link SyncEngine}): sign-in, the three sync modes, server actions and
 * following the server's model, one job at a time per database; and live mode. Every job is a
 * run of the sync core's machine, driven by the shell (`sync/shell.ts`).
 *
 * @module
 */

import type { Database } from "./database.js";
import { DEVICE_FILE_GRACE_HOURS, deviceOf } from "./database.js";
import type { Device } from "./device.js";
import { FerryError, invalid, messageOf } from "./errors.js";
import { isFerryObject } from "./objects.js";
import type { FerryObject } from "./objects.js";
import { LiveMode } from "./live.js";
import type { LiveCallbacks } from "./live.js";
import type { Done, Job, Progress } from "./sync/shell.js";
import { drive } from "./sync/shell.js";
import { Transport } from "./sync/transport.js";

/** The answer to a second job while one runs on the database, exactly as the Rust SDK words it. */
export const SIMULTANEOUS_SYNC_MESSAGE =
  "Performing simultaneous synchronizations is not supported. Please try again after the current synchronization is completed.";

/** What a sync did. */
export interface SyncReport {
  /** Objects and deletions the server applied. */
  uploaded: number;
  /** Changes the server rejected (kept in its `SynchronizationError`), with its reason; their fresh server state was downloaded. */
  rejected: { entity: string; id: string; reason: string }[];
  /** Objects written, per entity. */
  downloaded: Record<string, number>;
  /** Objects removed from the device, per entity. */
  removed: Record<string, number>;
  /** File contents sent. */
  filesUploaded: number;
  /** File contents fetched. */
  filesDownloaded: number;
}

/** How a sync runs. */
export interface SyncOptions {
  /**
   * `all` (every committed change up, every entity down per its download behaviour),
   * `unsynchronized` (every committed change up, the fresh state of rejected ones down), or
   * `selected` (the committed changes of `objects` up, their fresh state down).
   */
  mode?: "all" | "unsynchronized" | "selected";
  /**
   * The objects of a `selected` sync: objects of the database (those never committed are
   * skipped: their uncommitted changes are never sent), or `{ entity, id }` of objects the
   * device may not hold yet, whose server state the sync fetches.
   */
  objects?: (FerryObject | { entity: string; id: string })[];
  /** Called at each step with how far the sync has come. */
  onProgress?: (progress: Progress) => void;
  /**
   * Cancels the sync: it ends with a {@link FerryError} of kind `cancelled`, and the phase under
   * way is finished or rolled back whole (a cancelled download changes nothing).
   */
  signal?: AbortSignal;
}

/** What a server action answered, and what it did on the device. */
export interface ActionOutcome {
  /** The action's result. */
  result: unknown;
  /** Objects it synchronised to the device (added, or overwriting the device's copy). */
  synced: number;
  /** Objects it removed from the device. */
  removed: number;
  /** Objects it asked to synchronise that were never saved: skipped. */
  skipped: number;
}

/** What {@link SyncEngine} is made with. */
export interface SyncEngineOptions {
  /**
   * The server: `https://host[:port][/prefix]`, plain `http://` only to this machine, or `""`
   * for the page's own origin (`location.origin`).
   */
  server: string;
  /**
   * Called when work the engine does by itself after a job fails without failing the job: the
   * removal of file contents nothing refers to that follows each completed sync
   * ({@link Database.collectFiles}), whose contents are then left for a later sync. The sync's
   * report is the same either way. By default the console is warned (`console.warn`).
   */
  onError?: (error: FerryError) => void;
}

/**
 * Synchronises one device database with one server. One job (a sync, a sign-in, an action
 * call) runs at a time on a database; a second fails at once with
 * {@link SIMULTANEOUS_SYNC_MESSAGE} (kind `already-running`).
 *
 * @example
 * ```ts
 * const engine = new SyncEngine(db, { server: "http://127.0.0.1:8750" });
 * await engine.signIn("alice", "alice's password");
 * const report = await engine.sync({ mode: "all", onProgress: (p) => console.log(p.phase, p.objectsDone) });
 * ```
 */
export class SyncEngine {
  readonly #database: Database;
  readonly #transport: Transport;
  readonly #onError: ((error: FerryError) => void) | undefined;
  #live: LiveMode | null = null;

  constructor(database: Database, options: SyncEngineOptions) {
    deviceOf(database).check();
    if (typeof options !== "object" || options === null || typeof options.server !== "string") {
      throw invalid("SyncEngine takes options { server, onError }, the server's address first", { option: "server" });
    }
    for (const key of Object.keys(options)) {
      if (key !== "server" && key !== "onError") throw invalid(`SyncEngine has no option \`${key}\``, { option: key });
    }
    if (options.onError !== undefined && typeof options.onError !== "function") {
      throw invalid("SyncEngine's `onError` must be a function", { option: "onError" });
    }
    this.#database = database;
    this.#transport = new Transport(options.server);
    this.#onError = options.onError;
  }

  /** The server, as the device database keeps it (`scheme://host:port[/prefix]`). */
  get server(): string {
    return this.#transport.server;
  }

  /** Whether a job (the app's sync, live mode's, a sign-in or an action call) runs on the database now. */
  get isSyncing(): boolean {
    return deviceOf(this.#database).job !== null;
  }

  /** Whether live mode runs. */
  get isLive(): boolean {
    return this.#live !== null;
  }

  /**
   * Signs in; the token and the user are kept in the device database. When another user was
   * signed in, their data leaves the device, which is refused (kind `another-users-changes`)
   * while any of their changes are not uploaded. Gives the user's id.
   *
   * @example
   * ```ts
   * const userId = await engine.signIn("alice", "alice's password");
   * ```
   */
  async signIn(user: string, password: string): Promise<string> {
    if (typeof user !== "string" || user === "") throw invalid("signIn takes the user's name", { option: "user" });
    if (typeof password !== "string") throw invalid("signIn takes the password as a string", { option: "password" });
    const done = await this.#run({ kind: "sign-in", user, password }, {});
    return (done as Extract<Done, { kind: "signed-in" }>).user;
  }

  /**
   * Runs one sync: an upload phase then a download phase, per the mode (by default `all`).
   *
   * @example
   * ```ts
   * const controller = new AbortController();
   * const report = await engine.sync({ mode: "selected", objects: [order], signal: controller.signal });
   * report.rejected; // [{ entity, id, reason }] for changes the server refused
   * ```
   */
  async sync(options: SyncOptions = {}): Promise<SyncReport> {
    if (typeof options !== "object" || options === null) throw invalid("sync takes options { mode, objects, onProgress, signal }");
    for (const key of Object.keys(options)) {
      if (!["mode", "objects", "onProgress", "signal"].includes(key)) throw invalid(`sync has no option \`${key}\``, { option: key });
    }
    const mode = options.mode ?? "all";
    if (mode !== "all" && mode !== "unsynchronized" && mode !== "selected") {
      throw invalid(`sync's \`mode\` is all, unsynchronized or selected, not ${JSON.stringify(mode)}`, { option: "mode" });
    }
    if (options.onProgress !== undefined && typeof options.onProgress !== "function") {
      throw invalid("sync's `onProgress` must be a function", { option: "onProgress" });
    }
    if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
      throw invalid("sync's `signal` must be an AbortSignal", { option: "signal" });
    }
    let job: Job;
    if (mode === "selected") {
      const keys = Array.isArray(options.objects) ? options.objects.map(selectedKey) : null;
      if (keys === null || keys.some((key) => key === undefined)) {
        throw invalid("a selected sync takes `objects`: objects of the database, or { entity, id } of objects to fetch", { option: "objects" });
      }
      const chosen = keys.filter((key): key is [string, string] => key !== null);
      const device = deviceOf(this.#database);
      for (const [entity, id] of chosen) {
        device.model.entity(entity);
        device.storedId(id);
      }
      job = { kind: "selected", objects: chosen };
    } else {
      if (options.objects !== undefined) throw invalid("`objects` is for a selected sync only", { option: "objects" });
      job = { kind: mode };
    }
    const done = await this.#run(job, { onProgress: options.onProgress, signal: options.signal });
    await this.#collectFiles();
    return report(done);
  }

  /**
   * Removes the contents nothing refers to any longer after a completed sync. A failure leaves
   * them for the next sync and does not fail this one: it goes to `onError` (or the console),
   * unless the database was closed meanwhile, which leaves nothing to collect.
   */
  async #collectFiles(): Promise<void> {
    try {
      await this.#database.collectFiles(DEVICE_FILE_GRACE_HOURS * 3_600_000);
    } catch (error) {
      if (deviceOf(this.#database).closed) return;
      const failure = new FerryError(
        error instanceof FerryError ? error.kind : "storage",
        `collectFiles after a sync failed, so the file contents nothing refers to stay until a later sync: ${messageOf(error)}`,
        error instanceof FerryError ? { ...error.fields } : {},
      );
      try {
        if (this.#onError !== undefined) this.#onError(failure);
        else console.warn(`Ferry: ${failure.message}`);
      } catch (thrown) {
        console.warn(`Ferry: the SyncEngine's onError failed: ${messageOf(thrown)} (reporting: ${failure.message})`);
      }
    }
  }

  /**
   * Calls the server action `name` with plain parameters (pass an object's id, not the object)
   * and applies the objects it synchronises to the device, in one local transaction.
   *
   * @example
   * ```ts
   * const { result, synced } = await engine.callAction("MyWorkOrdersIn", { Status: "Closed" });
   * ```
   */
  async callAction(name: string, parameters: Record<string, unknown> = {}): Promise<ActionOutcome> {
    if (typeof name !== "string" || name === "") throw invalid("callAction takes the action's name", { option: "name" });
    if (typeof parameters !== "object" || parameters === null || Array.isArray(parameters)) {
      throw invalid("callAction's parameters must be an object of plain values", { option: "parameters" });
    }
    for (const [key, value] of Object.entries(parameters)) {
      if (isFerryObject(value)) {
        throw invalid(`the parameter \`${key}\` of \`${name}\` is a \`${value.entity}\` object: pass its id`, { option: key });
      }
      if (value === undefined || typeof value === "function" || typeof value === "symbol" || typeof value === "bigint") {
        throw invalid(`the parameter \`${key}\` of \`${name}\` is not a plain JSON value`, { option: key });
      }
    }
    const done = (await this.#run({ kind: "call-action", name, parameters: JSON.parse(JSON.stringify(parameters)) }, {})) as Extract<
      Done,
      { kind: "acted" }
    >;
    return { result: done.result, synced: done.synced, removed: done.removed, skipped: done.skipped };
  }

  /**
   * Asks the server for its model and follows it (migrating the device's schema, keeping its
   * changes); gives why a full sync is due now, if one is (`first-sync`, `model-changed`).
   *
   * @example
   * ```ts
   * if ((await engine.followModel()) !== null) await engine.sync({ mode: "all" });
   * ```
   */
  async followModel(): Promise<"first-sync" | "model-changed" | null> {
    await this.#run({ kind: "follow-model" }, {});
    return (await this.#database.status()).fullSyncDue;
  }

  /**
   * Starts live mode: keeps the server's live stream open (`GET /v1/live`), and syncs (mode
   * `all`) when it opens, when the server says that something the user downloads changed, and
   * shortly after local commits; reconnects after network failures with a jittered, growing
   * wait. It ends with {@link SyncEngine.stopLive}, or by itself (telling `onError`) when going
   * on cannot help: the session ended, or the server speaks another protocol.
   *
   * @example
   * ```ts
   * engine.startLive({ onSync: (report) => console.log(report.downloaded), onState: (state) => console.log(state) });
   * ```
   */
  startLive(callbacks: LiveCallbacks = {}): void {
    const device = deviceOf(this.#database);
    device.check();
    if (this.#live !== null) throw new FerryError("already-running", "live mode runs already on this engine");
    for (const key of Object.keys(callbacks)) {
      if (!["onSync", "onError", "onState"].includes(key)) throw invalid(`startLive has no option \`${key}\``, { option: key });
      if (typeof (callbacks as Record<string, unknown>)[key] !== "function") throw invalid(`startLive's \`${key}\` must be a function`, { option: key });
    }
    const stop = () => void this.stopLive();
    const live = new LiveMode(device, this.#transport, (options) => this.sync(options), callbacks, () => {
      if (this.#live === live) this.#live = null;
      device.closers.delete(stop);
    });
    this.#live = live;
    device.closers.add(stop);
    live.start();
  }

  /** Stops live mode; resolves once its stream is closed and its sync, if one runs, has ended. */
  async stopLive(): Promise<void> {
    const live = this.#live;
    this.#live = null;
    if (live !== null) await live.stop();
  }

  /** Runs one job, refusing a second on the same database while one runs. */
  async #run(job: Job, options: { onProgress?: ((progress: Progress) => void) | undefined; signal?: AbortSignal | undefined }): Promise<Done> {
    const device: Device = deviceOf(this.#database);
    device.check();
    if (device.job !== null) throw new FerryError("already-running", SIMULTANEOUS_SYNC_MESSAGE);
    const running = drive(device, this.#transport, job, options);
    device.job = running;
    try {
      return await running;
    } finally {
      device.job = null;
    }
  }
}

/**
 * An object of a selected sync as the core takes it: `null` for an object never committed
 * (skipped), `undefined` for something that is not an object.
 */
function selectedKey(object: unknown): [string, string] | null | undefined {
  if (isFerryObject(object)) return object.committed === null ? null : [object.entity, object.id];
  if (typeof object === "object" && object !== null) {
    const { entity, id } = object as { entity?: unknown; id?: unknown };
    if (typeof entity === "string" && typeof id === "string") return [entity, id];
  }
  return undefined;
}

function report(done: Done): SyncReport {
  if (done.kind !== "synced") throw new FerryError("corrupt", `a sync ended with ${done.kind}`);
  return {
    uploaded: done.uploaded,
    rejected: done.rejected,
    downloaded: done.downloaded,
    removed: done.removed,
    filesUploaded: done.files_uploaded,
    filesDownloaded: done.files_downloaded,
  };
}
