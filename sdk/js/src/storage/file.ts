/**
 * {@link fileStorage}: a device database in a SQLite file, for Node. The file is read into an
 * in-memory database when it opens and written back after each committed write, atomically (a
 * temporary file beside it, synced, then renamed over it), so a crash leaves the file as it
 * was after one commit or the next, never between. File contents live beside it in
 * `<path>.files/`, by SHA-256, as the Rust SDK keeps them; the Rust SDK opens the same files.
 *
 * @module
 */

import type { FileStore, OpenStorage, Storage, StorageContext } from "../storage.js";
import { hex } from "../storage.js";
import { FerryError, messageOf } from "../errors.js";
import { inNode } from "../wasm.js";
import { WasmConnection, loadImage } from "./sqlite.js";

/** What the storage needs of Node's `fs/promises`. */
interface NodeFiles {
  readFile(path: string): Promise<Uint8Array>;
  open(path: string, flags: string): Promise<{
    write(data: Uint8Array): Promise<unknown>;
    sync(): Promise<void>;
    close(): Promise<void>;
  }>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string, options: { recursive: true }): Promise<unknown>;
  rm(path: string, options: { recursive?: boolean; force: true }): Promise<void>;
  stat(path: string): Promise<{ isFile(): boolean; size: number; mtimeMs: number }>;
  readdir(path: string): Promise<string[]>;
}

/** What the storage needs of Node's `fs`. */
interface NodeFs {
  openAsBlob(path: string): Promise<Blob>;
}

async function nodeModules(): Promise<{ files: NodeFiles; fs: NodeFs }> {
  // Named through variables, so bundlers for browsers leave these Node modules alone.
  const promisesName = "node:fs/promises";
  const fsName = "node:fs";
  const files = (await import(/* @vite-ignore */ promisesName)) as NodeFiles;
  const fs = (await import(/* @vite-ignore */ fsName)) as NodeFs;
  return { files, fs };
}

/** 16 random bytes as hex: names of temporary files. */
function randomName(): string {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

/** The size of the file at `path`, or `null` when there is none. */
async function sizeOf(files: NodeFiles, path: string): Promise<number | null> {
  try {
    const stat = await files.stat(path);
    return stat.isFile() ? stat.size : null;
  } catch {
    return null;
  }
}

/** Writes `bytes` to `path` whole: into a temporary file beside it, synced, then renamed. */
async function writeWhole(files: NodeFiles, temporary: string, path: string, bytes: Uint8Array): Promise<void> {
  const handle = await files.open(temporary, "w");
  try {
    await handle.write(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await files.rename(temporary, path);
}

/**
 * A device database in the SQLite file at `path` (Node only), with file contents in
 * `${path}.files/`. The file is the same format as the Rust SDK's device database: either SDK
 * opens what the other wrote (one at a time: a database file belongs to one open database).
 *
 * @example
 * ```ts
 * import { openDatabase, fileStorage } from "@ferry/sdk";
 * const db = await openDatabase({ model: modelText, storage: fileStorage("./device.db") });
 * ```
 */
export function fileStorage(path: string): Storage {
  if (typeof path !== "string" || path === "" || path === ":memory:") {
    throw new FerryError("invalid-argument", `\`${String(path)}\` is not a file path: fileStorage takes the path of a database file`);
  }
  return {
    description: path,
    async open(context: StorageContext): Promise<OpenStorage> {
      if (!inNode()) {
        throw new FerryError("storage", "fileStorage works in Node only: in a browser use opfsStorage in a Worker");
      }
      const { files, fs } = await nodeModules();
      const wal = await sizeOf(files, `${path}-wal`);
      if (wal !== null && wal > 0) {
        throw new FerryError(
          "storage",
          `\`${path}\` has a write-ahead log (\`${path}-wal\`) not yet folded into it: close the program using it (or open it once with the Rust SDK), then open it here`,
        );
      }
      const sqlite3 = await context.sqlite();
      const db = new sqlite3.oo1.DB(":memory:", "c");
      const connection = new WasmConnection(sqlite3, db);
      try {
        if ((await sizeOf(files, path)) !== null) loadImage(sqlite3, db, await files.readFile(path));
      } catch (error) {
        connection.close();
        throw new FerryError("storage", `\`${path}\` cannot be opened as a device database: ${messageOf(error)}`);
      }
      const store = await DirectoryFiles.open(files, fs, `${path}.files`);
      return {
        connection,
        files: store,
        persist: async () => {
          const image = sqlite3.capi.sqlite3_js_db_export(db);
          try {
            await writeWhole(files, `${path}.${randomName()}.tmp`, path, image);
          } catch (error) {
            throw new FerryError("storage", `\`${path}\` could not be written: ${messageOf(error)}`);
          }
        },
        close: async () => connection.close(),
      };
    },
  };
}

/**
 * File contents in a directory, as the Rust SDK's file store keeps them: `<root>/<first two
 * hex digits>/<sha-256>`, each written into `<root>/incoming/` first and renamed whole.
 */
class DirectoryFiles implements FileStore {
  readonly #files: NodeFiles;
  readonly #fs: NodeFs;
  readonly #root: string;

  private constructor(files: NodeFiles, fs: NodeFs, root: string) {
    this.#files = files;
    this.#fs = fs;
    this.#root = root;
  }

  /** Opens the store, removing what an interrupted write left in `incoming/`. */
  static async open(files: NodeFiles, fs: NodeFs, root: string): Promise<DirectoryFiles> {
    await files.rm(`${root}/incoming`, { recursive: true, force: true });
    await files.mkdir(`${root}/incoming`, { recursive: true });
    return new DirectoryFiles(files, fs, root);
  }

  #path(hash: string): string {
    return `${this.#root}/${hash.length >= 2 ? hash.slice(0, 2) : "__"}/${hash}`;
  }

  async has(hash: string): Promise<boolean> {
    return (await sizeOf(this.#files, this.#path(hash))) !== null;
  }

  async get(hash: string): Promise<Blob | null> {
    if (!(await this.has(hash))) return null;
    return await this.#fs.openAsBlob(this.#path(hash));
  }

  async held(): Promise<{ hash: string; arrivedMs: number }[]> {
    const held: { hash: string; arrivedMs: number }[] = [];
    for (const shard of await this.#files.readdir(this.#root)) {
      if (shard === "incoming" || shard.length !== 2) continue;
      for (const hash of await this.#files.readdir(`${this.#root}/${shard}`)) {
        if (!/^[0-9a-f]{64}$/.test(hash)) continue;
        const stat = await this.#files.stat(`${this.#root}/${shard}/${hash}`);
        if (stat.isFile()) held.push({ hash, arrivedMs: stat.mtimeMs });
      }
    }
    return held;
  }

  async remove(hash: string): Promise<void> {
    await this.#files.rm(this.#path(hash), { force: true });
  }

  async put(hash: string, content: Blob): Promise<void> {
    const path = this.#path(hash);
    await this.#files.mkdir(path.slice(0, path.lastIndexOf("/")), { recursive: true });
    const temporary = `${this.#root}/incoming/${randomName()}.part`;
    try {
      await writeWhole(this.#files, temporary, path, new Uint8Array(await content.arrayBuffer()));
    } catch (error) {
      await this.#files.rm(temporary, { force: true });
      throw new FerryError("storage", `the file store \`${this.#root}\` could not keep a content: ${messageOf(error)}`);
    }
  }
}
