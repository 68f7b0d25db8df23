/**
 * The Worker's side of running the SDK in a dedicated Worker (`@ferry/sdk/worker`): browsers
 * keep a persistent database in OPFS only through synchronous access handles, which only a
 * Worker has. The Worker opens the database and the sync engine; the page calls them through
 * {@link connectWorker}, whose objects have the same methods. The messages are described in
 * `protocol.ts`.
 *
 * @example
 * ```ts
 * // ferry-worker.ts, loaded with new Worker(new URL("./ferry-worker.js", import.meta.url), { type: "module" })
 * import { serveWorker } from "@ferry/sdk/worker";
 * serveWorker();
 * ```
 *
 * @module
 */

import type { Database } from "./database.js";
import { deviceOf, openDatabase } from "./database.js";
import { SyncEngine } from "./engine.js";
import type { SyncOptions } from "./engine.js";
import { FerryError } from "./errors.js";
import type { FerryObject } from "./objects.js";
import type { MessageEndpoint } from "./protocol.js";
import { errorToWire } from "./protocol.js";
import type { Storage } from "./storage.js";
import { opfsStorage } from "./storage/opfs.js";
import type { WasmLocation } from "./wasm.js";
import type { Watch } from "./watch.js";

export type { MessageEndpoint } from "./protocol.js";

/** How {@link serveWorker} runs. */
export interface ServeOptions {
  /** The channel to the page: by default the Worker's own global scope. */
  endpoint?: MessageEndpoint;
  /** The storage for the name the page opens: by default {@link opfsStorage}. */
  storage?: (name: string) => Storage;
  /** Where the WebAssembly modules are, when a bundler moved them. */
  wasm?: WasmLocation;
}

type Request =
  | { type: "open"; id: number; model: string; storage: string; server: string }
  | { type: "call"; id: number; target: "db" | "engine"; method: string; args: unknown[] }
  | { type: "cancel"; id: number }
  | { type: "watch"; id: number; entity: string; constraint: string | null; options: Record<string, unknown> }
  | { type: "unwatch"; id: number };

/** The calls the page may make, per target. */
const DATABASE_CALLS = new Set([
  "commit",
  "delete",
  "find",
  "query",
  "pendingChanges",
  "pendingObjects",
  "status",
  "clear",
  "attachFile",
  "readFile",
  "close",
]);
const ENGINE_CALLS = new Set(["signIn", "sync", "callAction", "followModel", "startLive", "stopLive"]);

/**
 * Serves the page's calls to a device database in this Worker until the database is closed.
 *
 * @example
 * ```ts
 * import { serveWorker } from "@ferry/sdk/worker";
 * serveWorker(); // in the Worker; the page calls connectWorker(worker, { model, storage: "field", server: "" })
 * ```
 */
export function serveWorker(options: ServeOptions = {}): void {
  const endpoint = options.endpoint ?? (globalThis as unknown as MessageEndpoint);
  const storageFor = options.storage ?? opfsStorage;
  let database: Database | null = null;
  let engine: SyncEngine | null = null;
  let modelVersion = "";
  const aborts = new Map<number, AbortController>();
  const watches = new Map<number, Watch>();
  const send = (message: Record<string, unknown>) => endpoint.postMessage(message);

  /** Tells the page when the database moved to another model. */
  const checkModel = () => {
    if (database === null) return;
    const core = database.core;
    if (core.version() !== modelVersion) {
      modelVersion = core.version();
      send({ type: "model", text: core.modelText() });
    }
  };

  const open = async (request: Extract<Request, { type: "open" }>) => {
    if (database !== null) throw new FerryError("invalid-argument", "this Worker serves a database already");
    const opened = await openDatabase(
      options.wasm === undefined
        ? { model: request.model, storage: storageFor(request.storage) }
        : { model: request.model, storage: storageFor(request.storage), wasm: options.wasm },
    );
    database = opened;
    modelVersion = opened.core.version();
    engine = new SyncEngine(opened, { server: request.server });
    deviceOf(opened).jobListeners.add((running) => {
      send({ type: "syncing", value: running });
      if (!running) checkModel();
    });
    return { modelText: opened.core.modelText() };
  };

  const call = async (request: Extract<Request, { type: "call" }>) => {
    if (database === null || engine === null) throw new FerryError("closed", "the Worker has no database open: connect first");
    const args = request.args;
    if (request.target === "db" && DATABASE_CALLS.has(request.method)) {
      const db = database;
      switch (request.method) {
        case "commit": {
          const objects = args[0] as FerryObject[];
          await db.commit(objects);
          return null;
        }
        case "attachFile": {
          const object = args[0] as FerryObject;
          await db.attachFile(object, args[1] as Blob, args[2] as string);
          return object.values;
        }
        case "close": {
          for (const watch of watches.values()) watch.close();
          watches.clear();
          await db.close();
          database = null;
          engine = null;
          return null;
        }
        default:
          return await (db as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[request.method]?.(...args);
      }
    }
    if (request.target === "engine" && ENGINE_CALLS.has(request.method)) {
      const sync = engine;
      switch (request.method) {
        case "sync": {
          const given = (args[0] ?? {}) as SyncOptions & { progress?: boolean; cancellable?: boolean };
          const options: SyncOptions = {};
          if (given.mode !== undefined) options.mode = given.mode;
          if (given.objects !== undefined) options.objects = given.objects;
          if (given.progress === true) options.onProgress = (progress) => send({ type: "progress", id: request.id, progress });
          const controller = new AbortController();
          aborts.set(request.id, controller);
          options.signal = controller.signal;
          try {
            return await sync.sync(options);
          } finally {
            aborts.delete(request.id);
          }
        }
        case "startLive":
          sync.startLive({
            onSync: (report) => send({ type: "live", event: "sync", value: report }),
            onError: (error) => send({ type: "live", event: "error", value: errorToWire(error) }),
            onState: (state) => send({ type: "live", event: "state", value: state }),
          });
          return null;
        default:
          return await (sync as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[request.method]?.(...args);
      }
    }
    throw new FerryError("invalid-argument", `the Worker has no call \`${request.target}.${request.method}\``);
  };

  const listener = (event: MessageEvent) => {
    const request = event.data as Request;
    if (typeof request !== "object" || request === null || typeof request.id !== "number") return;
    switch (request.type) {
      case "cancel":
        aborts.get(request.id)?.abort();
        return;
      case "unwatch":
        watches.get(request.id)?.close();
        watches.delete(request.id);
        return;
      case "watch": {
        try {
          if (database === null) throw new FerryError("closed", "the Worker has no database open: connect first");
          const watch = database.watch(
            request.entity,
            request.constraint,
            { ...request.options, onError: (error) => send({ type: "watch-error", id: request.id, error: errorToWire(error) }) },
            (objects) => send({ type: "watched", id: request.id, objects }),
          );
          watches.set(request.id, watch);
        } catch (error) {
          send({ type: "watch-error", id: request.id, error: errorToWire(error) });
        }
        return;
      }
      case "open":
      case "call": {
        const work = request.type === "open" ? open(request) : call(request);
        work.then(
          (value) => {
            send({ type: "result", id: request.id, value });
            checkModel();
          },
          (error: unknown) => send({ type: "result", id: request.id, error: errorToWire(error) }),
        );
      }
    }
  };
  endpoint.addEventListener("message", listener);
  endpoint.start?.();
}
