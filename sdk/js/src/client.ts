/**
 * The page's side of running the SDK in a dedicated Worker: {@link connectWorker} gives a
 * database and a sync engine with the methods of {@link Database} and {@link SyncEngine}.
 * Calls that touch no storage (`create`, `set`, `get`, `rollback`) run on the page, on its own
 * copy of the core; the others go to the Worker (see `protocol.ts`).
 *
 * @module
 */

import type { ClearOptions, DeviceStatus, PendingObject, QueryOptions, WatchOptions } from "./database.js";
import type { ActionOutcome, SyncOptions, SyncReport } from "./engine.js";
import { FerryError, fromCore, invalid } from "./errors.js";
import type { LiveCallbacks } from "./live.js";
import { ModelInfo } from "./model.js";
import type { Value } from "./model.js";
import type { Deletion, FerryObject, ModelAccess } from "./objects.js";
import { copyValues, createObject, getValue, isFerryObject, objectArgument, rollbackObject, setValue } from "./objects.js";
import type { MessageEndpoint, WireError } from "./protocol.js";
import { errorFromWire } from "./protocol.js";
import type { Progress } from "./sync/shell.js";
import type { WasmLocation } from "./wasm.js";
import { Core, loadFerry } from "./wasm.js";
import type { Watch } from "./watch.js";

/** What {@link connectWorker} takes. */
export interface ConnectOptions {
  /** The model file's text. */
  model: string;
  /** The database's name in the Worker's storage (its OPFS name, with the default storage). */
  storage: string;
  /** The server, as {@link SyncEngine} takes it (`""` for the page's origin). */
  server: string;
  /** Where the WebAssembly modules are, when a bundler moved them. */
  wasm?: WasmLocation;
}

type Message = Record<string, unknown> & { type: string; id?: number };

/** The channel to the Worker, with the calls waiting for their answers. */
class Channel {
  readonly #endpoint: MessageEndpoint;
  #next = 1;
  readonly #waiting = new Map<number, { done: (value: unknown) => void; fail: (error: FerryError) => void }>();
  readonly handlers = new Map<string, (message: Message) => void>();

  constructor(endpoint: MessageEndpoint) {
    this.#endpoint = endpoint;
    endpoint.addEventListener("message", (event: MessageEvent) => {
      const message = event.data as Message;
      if (typeof message !== "object" || message === null) return;
      if (message.type === "result" && typeof message.id === "number") {
        const waiting = this.#waiting.get(message.id);
        this.#waiting.delete(message.id);
        if (message["error"] !== undefined) waiting?.fail(errorFromWire(message["error"] as WireError));
        else waiting?.done(message["value"]);
        return;
      }
      const handler = typeof message.id === "number" ? this.handlers.get(`${message.type}:${message.id}`) : undefined;
      (handler ?? this.handlers.get(message.type))?.(message);
    });
    endpoint.start?.();
  }

  id(): number {
    return this.#next++;
  }

  post(message: Message): void {
    this.#endpoint.postMessage(message);
  }

  /** Sends a request and waits for its result. */
  ask(message: Message, id = this.id()): Promise<unknown> {
    return new Promise((done, fail) => {
      this.#waiting.set(id, { done, fail });
      try {
        this.post({ ...message, id });
      } catch (error) {
        this.#waiting.delete(id);
        fail(new FerryError("invalid-argument", `the call cannot be sent to the Worker: ${String(error)}`));
      }
    });
  }

  call(target: "db" | "engine", method: string, args: unknown[], id?: number): Promise<unknown> {
    return this.ask({ type: "call", target, method, args }, id);
  }
}

/**
 * Connects to a Worker that runs `serveWorker()` (from `@ferry/sdk/worker`), opening the
 * database there; gives a database and an engine to use from the page.
 *
 * @example
 * ```ts
 * import { connectWorker } from "@ferry/sdk";
 * const worker = new Worker(new URL("./ferry-worker.js", import.meta.url), { type: "module" });
 * const { db, engine } = await connectWorker(worker, { model: modelText, storage: "field", server: "" });
 * const order = db.create("Field.WorkOrder");
 * db.set(order, "Title", "Fix the pump");
 * await db.commit(order);
 * await engine.sync();
 * ```
 */
export async function connectWorker(
  endpoint: MessageEndpoint,
  options: ConnectOptions,
): Promise<{ db: WorkerDatabase; engine: WorkerSyncEngine }> {
  if (typeof endpoint !== "object" || endpoint === null || typeof endpoint.postMessage !== "function") {
    throw invalid("connectWorker takes a Worker (or a MessagePort) running serveWorker()");
  }
  if (typeof options !== "object" || options === null) throw invalid("connectWorker takes options { model, storage, server }");
  for (const key of ["model", "storage", "server"] as const) {
    if (typeof options[key] !== "string") throw invalid(`connectWorker's \`${key}\` must be a string`, { option: key });
  }
  await loadFerry(options.wasm);
  const channel = new Channel(endpoint);
  const opened = (await channel.ask({ type: "open", model: options.model, storage: options.storage, server: options.server })) as {
    modelText: string;
  };
  const db = new WorkerDatabase(channel, opened.modelText);
  return { db, engine: new WorkerSyncEngine(channel) };
}

/** A device database in a Worker, with the methods of {@link Database}. */
export class WorkerDatabase implements ModelAccess {
  readonly #channel: Channel;
  #core: Core;
  #model: ModelInfo;
  #closed = false;

  /** @internal */
  constructor(channel: Channel, modelText: string) {
    this.#channel = channel;
    this.#core = fromCore("model", () => new Core(modelText));
    this.#model = new ModelInfo(this.#core);
    channel.handlers.set("model", (message) => {
      const next = new Core(String(message["text"]));
      this.#core.free();
      this.#core = next;
      this.#model = new ModelInfo(next);
    });
  }

  /** The page's copy of the core, for the model the Worker's database holds. */
  get core(): Core {
    return this.#core;
  }

  /** The model's entities, as the page reads them. */
  get model(): ModelInfo {
    return this.#model;
  }

  #check(): void {
    if (this.#closed) throw new FerryError("closed", "the device database in the Worker is closed");
  }

  /** See {@link Database.create}. */
  create(entity: string): FerryObject {
    this.#check();
    return createObject(this, entity);
  }

  /** See {@link Database.set}. */
  set(object: FerryObject, member: string, value: unknown): void {
    this.#check();
    setValue(this, object, member, value);
  }

  /** See {@link Database.get}. */
  get(object: FerryObject, member: string): Value {
    this.#check();
    return getValue(this, object, member);
  }

  /** See {@link Database.rollback}. */
  rollback(object: FerryObject): void {
    this.#check();
    rollbackObject(this, object);
  }

  /** See {@link Database.commit}. */
  async commit(objects: FerryObject | FerryObject[]): Promise<void> {
    this.#check();
    const list = (Array.isArray(objects) ? objects : [objects]).map((object) => objectArgument(object, "commit"));
    const sent = list.map((object) => ({ ...object, values: copyValues(object.values) }));
    await this.#channel.call("db", "commit", [sent]);
    list.forEach((object, index) => (object.committed = sent[index]?.values ?? null));
  }

  /** See {@link Database.delete}. */
  async delete(object: FerryObject): Promise<Deletion> {
    this.#check();
    const target = objectArgument(object, "delete");
    const deletion = (await this.#channel.call("db", "delete", [target])) as Deletion;
    target.deleted = true;
    return deletion;
  }

  /** See {@link Database.find}. */
  async find(entity: string, id: string): Promise<FerryObject | null> {
    this.#check();
    return (await this.#channel.call("db", "find", [entity, id])) as FerryObject | null;
  }

  /** See {@link Database.query}. */
  async query(entity: string, constraint?: string | null, options: QueryOptions = {}): Promise<FerryObject[]> {
    this.#check();
    return (await this.#channel.call("db", "query", [entity, constraint, options])) as FerryObject[];
  }

  /** See {@link Database.watch}: results come from the Worker after each change. */
  watch(entity: string, constraint: string | null | undefined, options: WatchOptions, callback: (objects: FerryObject[]) => void): Watch {
    this.#check();
    this.#model.entity(entity);
    if (typeof callback !== "function") throw invalid("watch takes a callback for its results", { option: "callback" });
    const { onError, ...query } = options ?? {};
    fromCore("constraint", () => this.#core.query(entity, JSON.stringify({ constraint: constraint || undefined, ...query }), null, new Date().toISOString()));
    const id = this.#channel.id();
    const watched = `watched:${id}`;
    const failed = `watch-error:${id}`;
    this.#channel.handlers.set(watched, (message) => callback(message["objects"] as FerryObject[]));
    this.#channel.handlers.set(failed, (message) => {
      const error = errorFromWire(message["error"] as WireError);
      if (onError !== undefined) onError(error);
      else console.error(`a watch of ${entity} failed: ${error.message}`);
    });
    this.#channel.post({ type: "watch", id, entity, constraint: constraint ?? null, options: query });
    return {
      close: () => {
        this.#channel.handlers.delete(watched);
        this.#channel.handlers.delete(failed);
        this.#channel.post({ type: "unwatch", id });
      },
    };
  }

  /** See {@link Database.pendingChanges}. */
  async pendingChanges(): Promise<number> {
    this.#check();
    return (await this.#channel.call("db", "pendingChanges", [])) as number;
  }

  /** See {@link Database.pendingObjects}. */
  async pendingObjects(): Promise<PendingObject[]> {
    this.#check();
    return (await this.#channel.call("db", "pendingObjects", [])) as PendingObject[];
  }

  /** See {@link Database.status}. */
  async status(): Promise<DeviceStatus> {
    this.#check();
    return (await this.#channel.call("db", "status", [])) as DeviceStatus;
  }

  /** See {@link Database.clear}. */
  async clear(entity: string, options: ClearOptions = {}): Promise<number> {
    this.#check();
    return (await this.#channel.call("db", "clear", [entity, options])) as number;
  }

  /** See {@link Database.attachFile}: the content is stored in the Worker, the object's members set here. */
  async attachFile(object: FerryObject, content: Blob | Uint8Array | ArrayBuffer, fileName: string): Promise<void> {
    this.#check();
    const target = objectArgument(object, "attachFile");
    const values = (await this.#channel.call("db", "attachFile", [{ ...target, values: copyValues(target.values) }, content, fileName])) as Record<
      string,
      Value
    >;
    for (const member of ["FileName", "FileSize", "ContentHash", "ContentChanged"]) target.values[member] = values[member] ?? null;
  }

  /** See {@link Database.readFile}. */
  async readFile(object: FerryObject): Promise<Blob | null> {
    this.#check();
    return (await this.#channel.call("db", "readFile", [objectArgument(object, "readFile")])) as Blob | null;
  }

  /** See {@link Database.close}. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#channel.call("db", "close", []);
    this.#closed = true;
    this.#core.free();
  }
}

/** A sync engine in a Worker, with the methods of {@link SyncEngine}. */
export class WorkerSyncEngine {
  readonly #channel: Channel;
  #syncing = false;
  #live: LiveCallbacks | null = null;

  /** @internal */
  constructor(channel: Channel) {
    this.#channel = channel;
    channel.handlers.set("syncing", (message) => (this.#syncing = message["value"] === true));
    channel.handlers.set("live", (message) => {
      const live = this.#live;
      if (live === null) return;
      const value = message["value"];
      if (message["event"] === "sync") live.onSync?.(value as SyncReport);
      if (message["event"] === "error") live.onError?.(errorFromWire(value as WireError));
      if (message["event"] === "state") {
        live.onState?.(value as "connected" | "disconnected");
      }
    });
  }

  /** Whether a job runs on the database in the Worker (as last told by it). */
  get isSyncing(): boolean {
    return this.#syncing;
  }

  /** Whether live mode was started from this page and not stopped. */
  get isLive(): boolean {
    return this.#live !== null;
  }

  /** See {@link SyncEngine.signIn}. */
  async signIn(user: string, password: string): Promise<string> {
    return (await this.#channel.call("engine", "signIn", [user, password])) as string;
  }

  /** See {@link SyncEngine.sync}: progress reports and cancellation cross to the Worker. */
  async sync(options: SyncOptions = {}): Promise<SyncReport> {
    const { onProgress, signal, objects, ...rest } = options ?? {};
    if (onProgress !== undefined && typeof onProgress !== "function") throw invalid("sync's `onProgress` must be a function", { option: "onProgress" });
    const id = this.#channel.id();
    const progress = `progress:${id}`;
    if (onProgress !== undefined) this.#channel.handlers.set(progress, (message) => onProgress(message["progress"] as Progress));
    const cancel = () => this.#channel.post({ type: "cancel", id });
    signal?.addEventListener("abort", cancel);
    const sent: Record<string, unknown> = { ...rest, progress: onProgress !== undefined };
    if (objects !== undefined) sent["objects"] = objects.map((object) => (isFerryObject(object) ? { ...object } : object));
    try {
      const running = this.#channel.call("engine", "sync", [sent], id);
      if (signal?.aborted === true) cancel();
      return (await running) as SyncReport;
    } finally {
      signal?.removeEventListener("abort", cancel);
      this.#channel.handlers.delete(progress);
    }
  }

  /** See {@link SyncEngine.callAction}. */
  async callAction(name: string, parameters: Record<string, unknown> = {}): Promise<ActionOutcome> {
    for (const [key, value] of Object.entries(parameters ?? {})) {
      if (isFerryObject(value)) throw invalid(`the parameter \`${key}\` of \`${name}\` is a \`${value.entity}\` object: pass its id`, { option: key });
    }
    return (await this.#channel.call("engine", "callAction", [name, parameters])) as ActionOutcome;
  }

  /** See {@link SyncEngine.followModel}. */
  async followModel(): Promise<"first-sync" | "model-changed" | null> {
    return (await this.#channel.call("engine", "followModel", [])) as "first-sync" | "model-changed" | null;
  }

  /** See {@link SyncEngine.startLive}: its callbacks are called on the page. */
  startLive(callbacks: LiveCallbacks = {}): void {
    if (this.#live !== null) throw new FerryError("already-running", "live mode runs already on this engine");
    const live = { ...callbacks };
    this.#live = live;
    this.#channel.call("engine", "startLive", []).catch((error: unknown) => {
      if (this.#live === live) this.#live = null;
      live.onError?.(error instanceof FerryError ? error : new FerryError("worker", String(error)));
    });
  }

  /** See {@link SyncEngine.stopLive}. */
  async stopLive(): Promise<void> {
    if (this.#live === null) return;
    this.#live = null;
    await this.#channel.call("engine", "stopLive", []);
  }
}
