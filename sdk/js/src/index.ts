/**
 * Ferry's device SDK for browsers and Node (`@ferry/sdk`): an offline device database
 * ({@link openDatabase}, {@link Database}) and the sync engine ({@link SyncEngine}) on Ferry's
 * sync core compiled to WebAssembly. The core makes every sync decision; this package performs
 * its actions with `fetch`, SQLite (sqlite-wasm), timers and the clock.
 *
 * @example
 * ```ts
 * import { openDatabase, SyncEngine, memoryStorage } from "@ferry/sdk";
 * const db = await openDatabase({ model: modelText, storage: memoryStorage() });
 * const engine = new SyncEngine(db, { server: "http://127.0.0.1:8750" });
 * await engine.signIn("alice", "alice's password");
 * const report = await engine.sync({ mode: "all" });
 * ```
 *
 * @module
 */

export { FerryError } from "./errors.js";
export { Database, openDatabase, DEVICE_FILE_GRACE_HOURS, FILE_BYTES_MAX } from "./database.js";
export type { ClearOptions, DeviceStatus, OpenOptions, PendingObject, QueryOptions, WatchOptions } from "./database.js";
export type { Deletion, FerryObject } from "./objects.js";
export { DELETE_CASCADE_OBJECTS_MAX } from "./objects.js";
export type { DeleteBehaviour, EntityInfo, MemberInfo, Value, Values } from "./model.js";
export type { Watch } from "./watch.js";
export { WATCH_DEBOUNCE_MS } from "./watch.js";
export type { FileStore, OpenStorage, SqlConnection, SqlValue, Storage, StorageContext } from "./storage.js";
export { memoryStorage } from "./storage/memory.js";
export { fileStorage } from "./storage/file.js";
export { opfsStorage, removeOpfsDatabase, OPFS_FILES_DIRECTORY } from "./storage/opfs.js";
export type { WasmLocation } from "./wasm.js";
export { Core, Machine } from "./wasm.js";
export { SyncEngine, SIMULTANEOUS_SYNC_MESSAGE } from "./engine.js";
export type { ActionOutcome, SyncEngineOptions, SyncOptions, SyncReport } from "./engine.js";
export type { Progress } from "./sync/shell.js";
export { ANSWER_IDLE_TIMEOUT_MS, ANSWER_TIMEOUT_MS, FILE_SEND_RATE_MIN_BYTES_PER_S, RESPONSE_BYTES_MAX } from "./sync/transport.js";
export { DOWNLOAD_BUFFERED_OBJECTS_MAX } from "./sync/download.js";
export { REMOVED_REMEMBERED_MAX } from "./sync/store.js";
export type { LiveCallbacks } from "./live.js";
export { LIVE_DEBOUNCE_MS, LIVE_EVENT_BYTES_MAX, LIVE_RETRY_MS_MAX, LIVE_RETRY_MS_MIN } from "./live.js";
export { connectWorker, WorkerDatabase, WorkerSyncEngine } from "./client.js";
export type { ConnectOptions } from "./client.js";
export type { MessageEndpoint } from "./protocol.js";
