/**
 * {@link opfsStorage}: a device database in the browser's origin private file system (OPFS),
 * kept across reloads. SQLite runs on sqlite-wasm's `opfs-sahpool` VFS, which needs the
 * synchronous access handles only a dedicated Worker has: run the SDK in a Worker (see
 * `@ferry/sdk/worker`) and call it from the page. File contents live in OPFS too, in
 * `ferry-files/<name>/<first two hex digits>/<sha-256>`, each written under `incoming/` first
 * and moved into place whole.
 *
 * @module
 */

import type { SAHPoolUtil, Sqlite3Static } from "@sqlite.org/sqlite-wasm";

import type { FileStore, OpenStorage, Storage, StorageContext } from "../storage.js";
import { hex } from "../storage.js";
import { FerryError, messageOf } from "../errors.js";
import type { WasmLocation } from "../wasm.js";
import { loadSqlite } from "../wasm.js";
import { WasmConnection } from "./sqlite.js";

/** The OPFS directory (under the origin's root) that holds file contents, one folder per database. */
export const OPFS_FILES_DIRECTORY = "ferry-files";

/** Files the SQLite pool keeps ready: each database takes its file and a journal. */
const POOL_CAPACITY_MIN = 6;

/** The parts of OPFS the storage uses (a Worker's view of it). */
interface Directory {
  getDirectoryHandle(name: string, options?: { create?: boolean }): Promise<Directory>;
  getFileHandle(name: string, options?: { create?: boolean }): Promise<FileHandle>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
  keys(): AsyncIterable<string>;
}

interface FileHandle {
  getFile(): Promise<File>;
  createSyncAccessHandle(): Promise<SyncAccessHandle>;
  move?(directory: Directory, name: string): Promise<void>;
}

interface SyncAccessHandle {
  write(bytes: Uint8Array, options?: { at?: number }): number;
  truncate(size: number): void;
  flush(): void;
  close(): void;
}

let pool: Promise<SAHPoolUtil> | null = null;

/** The databases open in this Worker: how many connections each has. */
const openNames = new Map<string, number>();

function opened(name: string, change: 1 | -1): void {
  const count = (openNames.get(name) ?? 0) + change;
  if (count > 0) openNames.set(name, count);
  else openNames.delete(name);
}

/** Installs the `opfs-sahpool` VFS once per Worker. */
function sahPool(sqlite3: Sqlite3Static): Promise<SAHPoolUtil> {
  pool ??= sqlite3.installOpfsSAHPoolVfs({}).then(async (util) => {
    await util.reserveMinimumCapacity(POOL_CAPACITY_MIN);
    return util;
  });
  pool.catch(() => {
    pool = null;
  });
  return pool;
}

function opfsRoot(): Promise<Directory> {
  const storage = (globalThis.navigator as { storage?: { getDirectory?: () => Promise<unknown> } } | undefined)?.storage;
  if (typeof storage?.getDirectory !== "function") {
    throw new FerryError("storage", "this browser has no origin private file system (navigator.storage.getDirectory)");
  }
  return storage.getDirectory() as Promise<Directory>;
}

/**
 * A device database named `name` in the origin private file system, persistent across
 * reloads; in a dedicated Worker only (where sqlite-wasm's `opfs-sahpool` VFS runs). One
 * Worker at a time may hold it open.
 *
 * @example
 * ```ts
 * // worker.ts
 * import { openDatabase, opfsStorage } from "@ferry/sdk";
 * const db = await openDatabase({ model: modelText, storage: opfsStorage("field") });
 * ```
 */
export function opfsStorage(name: string): Storage {
  checkName(name, "opfsStorage");
  return {
    description: `opfs:${name}`,
    async open(context: StorageContext): Promise<OpenStorage> {
      checkWorker("opfsStorage works only in a dedicated Worker: open the database there (see @ferry/sdk/worker) and call it from the page");
      const sqlite3 = await context.sqlite();
      const util = await openPool(sqlite3);
      const connection = new WasmConnection(sqlite3, new util.OpfsSAHPoolDb(databaseFile(name)));
      opened(name, 1);
      let files: OpfsFiles;
      try {
        files = await OpfsFiles.open(await filesFolder(name, true));
      } catch (error) {
        opened(name, -1);
        connection.close();
        throw error;
      }
      return {
        connection,
        files,
        // The VFS writes through to OPFS at each transaction's commit.
        persist: async () => {},
        close: async () => {
          opened(name, -1);
          connection.close();
        },
      };
    },
  };
}

/**
 * Removes the OPFS device database `name` and its file contents, in a dedicated Worker, once
 * it is closed (an open one is refused, and nothing changes). A database that does not exist
 * is nothing to remove. Gives whether a database file was there.
 *
 * @example
 * ```ts
 * await db.close();
 * await removeOpfsDatabase("field");
 * ```
 */
export async function removeOpfsDatabase(name: string, options: { wasm?: WasmLocation } = {}): Promise<boolean> {
  checkName(name, "removeOpfsDatabase");
  if (typeof options !== "object" || options === null) throw new FerryError("invalid-argument", "removeOpfsDatabase takes options { wasm }", { option: "options" });
  for (const key of Object.keys(options)) {
    if (key !== "wasm") throw new FerryError("invalid-argument", `removeOpfsDatabase has no option \`${key}\``, { option: key });
  }
  checkWorker("removeOpfsDatabase works only in a dedicated Worker, where OPFS databases are opened");
  if (openNames.has(name)) {
    throw new FerryError("storage", `the OPFS database \`${name}\` is open: close it before removing it`);
  }
  const util = await openPool(await loadSqlite(options.wasm));
  const file = databaseFile(name);
  const existed = util.getFileNames().includes(file);
  util.unlink(file);
  util.unlink(`${file}-journal`);
  const folder = await filesFolder(name, false).catch(() => null);
  if (folder !== null) {
    const parent = await (await opfsRoot()).getDirectoryHandle(OPFS_FILES_DIRECTORY);
    await parent.removeEntry(name, { recursive: true });
  }
  return existed;
}

/** Refuses a name that is not a database name, naming the call it was given to. */
function checkName(name: unknown, call: string): asserts name is string {
  if (typeof name !== "string" || !/^[A-Za-z0-9._-]{1,100}$/.test(name) || name.startsWith(".")) {
    throw new FerryError(
      "invalid-argument",
      `\`${String(name)}\` is not a database name: ${call} takes 1 to 100 letters, digits, \`.\`, \`_\` or \`-\`, not starting with \`.\``,
      { option: "name" },
    );
  }
}

/** Refuses to run outside a dedicated Worker. */
function checkWorker(message: string): void {
  const scope = globalThis as { WorkerGlobalScope?: unknown; importScripts?: unknown };
  if (scope.WorkerGlobalScope === undefined || typeof scope.importScripts !== "function") {
    throw new FerryError("storage", message);
  }
}

/** The pool of SQLite files, installed once per Worker. */
async function openPool(sqlite3: Sqlite3Static): Promise<SAHPoolUtil> {
  try {
    return await sahPool(sqlite3);
  } catch (error) {
    throw new FerryError("storage", `the OPFS database pool could not be opened (is another tab using it?): ${messageOf(error)}`);
  }
}

/** The database's file in the pool. */
function databaseFile(name: string): string {
  return `/${name}.db`;
}

/** The folder of a database's file contents. */
async function filesFolder(name: string, create: boolean): Promise<Directory> {
  const root = await opfsRoot();
  return await (await root.getDirectoryHandle(OPFS_FILES_DIRECTORY, { create })).getDirectoryHandle(name, { create });
}

/** File contents in an OPFS directory, each moved into place whole. */
class OpfsFiles implements FileStore {
  readonly #root: Directory;

  private constructor(root: Directory) {
    this.#root = root;
  }

  /** Opens the store, removing what an interrupted write left in `incoming/`. */
  static async open(root: Directory): Promise<OpfsFiles> {
    try {
      await root.removeEntry("incoming", { recursive: true });
    } catch {
      // There was none.
    }
    await root.getDirectoryHandle("incoming", { create: true });
    return new OpfsFiles(root);
  }

  async #folder(hash: string, create: boolean): Promise<Directory | null> {
    try {
      return await this.#root.getDirectoryHandle(hash.length >= 2 ? hash.slice(0, 2) : "__", { create });
    } catch {
      return null;
    }
  }

  async #handle(hash: string): Promise<FileHandle | null> {
    const folder = await this.#folder(hash, false);
    if (folder === null) return null;
    try {
      await folder.getFileHandle(`${hash}.partial`);
      return null; // being written, or a write was cut short
    } catch {
      // No marker: the content, if there, is whole.
    }
    try {
      return await folder.getFileHandle(hash);
    } catch {
      return null;
    }
  }

  async has(hash: string): Promise<boolean> {
    return (await this.#handle(hash)) !== null;
  }

  async get(hash: string): Promise<Blob | null> {
    const handle = await this.#handle(hash);
    return handle === null ? null : await handle.getFile();
  }

  async held(): Promise<{ hash: string; arrivedMs: number }[]> {
    const held: { hash: string; arrivedMs: number }[] = [];
    for await (const shard of this.#root.keys()) {
      if (shard === "incoming" || shard.length !== 2) continue;
      const folder = await this.#root.getDirectoryHandle(shard);
      for await (const hash of folder.keys()) {
        if (!/^[0-9a-f]{64}$/.test(hash)) continue;
        const handle = await this.#handle(hash);
        if (handle !== null) held.push({ hash, arrivedMs: (await handle.getFile()).lastModified });
      }
    }
    return held;
  }

  async remove(hash: string): Promise<void> {
    const folder = await this.#folder(hash, false);
    try {
      await folder?.removeEntry(hash);
    } catch (error) {
      if ((error as { name?: unknown } | null)?.name === "NotFoundError") return; // not held
      // Kept, as when the file is open (`NoModificationAllowedError`).
      throw new FerryError("storage", `the OPFS file store could not remove the content ${hash}: ${messageOf(error)}`);
    }
  }

  async put(hash: string, content: Blob): Promise<void> {
    const bytes = new Uint8Array(await content.arrayBuffer());
    const folder = await this.#folder(hash, true);
    if (folder === null) throw new FerryError("storage", `the OPFS file store cannot make a folder for ${hash}`);
    const incoming = await this.#root.getDirectoryHandle("incoming", { create: true });
    const partName = `${hex(crypto.getRandomValues(new Uint8Array(16)))}.part`;
    const part = await incoming.getFileHandle(partName, { create: true });
    try {
      await writeAll(part, bytes);
      if (typeof part.move === "function") {
        await part.move(folder, hash);
        return;
      }
      // A browser without `move`: a marker beside the content hides it while it is written
      // under its own name, so a write cut short is never taken for the content.
      await folder.getFileHandle(`${hash}.partial`, { create: true });
      await writeAll(await folder.getFileHandle(hash, { create: true }), bytes);
      await folder.removeEntry(`${hash}.partial`);
      await incoming.removeEntry(partName);
    } catch (error) {
      await incoming.removeEntry(partName).catch(() => {});
      throw new FerryError("storage", `the OPFS file store could not keep a content: ${messageOf(error)}`);
    }
  }
}

/** Writes `bytes` as the whole of a file, flushed. */
async function writeAll(handle: FileHandle, bytes: Uint8Array): Promise<void> {
  const access = await handle.createSyncAccessHandle();
  try {
    access.truncate(0);
    let at = 0;
    while (at < bytes.length) at += access.write(bytes.subarray(at), { at });
    access.flush();
  } finally {
    access.close();
  }
}
