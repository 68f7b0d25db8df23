/**
 * {@link memoryStorage}: a device database in memory, gone when it is closed. For tests, and
 * for apps that keep nothing between runs.
 *
 * @module
 */

import type { OpenStorage, Storage, StorageContext } from "../storage.js";
import { MemoryFiles, WasmConnection } from "./sqlite.js";

/**
 * A device database held in memory (sqlite-wasm's `:memory:`), with its file contents in
 * memory too. Nothing survives {@link Database.close}.
 *
 * @example
 * ```ts
 * import { openDatabase, memoryStorage } from "@ferry/sdk";
 * const db = await openDatabase({ model: modelText, storage: memoryStorage() });
 * ```
 */
export function memoryStorage(): Storage {
  return {
    description: "memory",
    async open(context: StorageContext): Promise<OpenStorage> {
      const sqlite3 = await context.sqlite();
      const connection = new WasmConnection(sqlite3, new sqlite3.oo1.DB(":memory:", "c"));
      return {
        connection,
        files: new MemoryFiles(),
        persist: async () => {},
        close: async () => connection.close(),
      };
    },
  };
}
