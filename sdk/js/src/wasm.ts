/**
 * Loading the two WebAssembly modules the SDK runs on: Ferry's device core (the model, the SQL,
 * the values and the sync machine, built from the Rust crates) and SQLite. Each is loaded once
 * per realm (page, worker or Node process) and shared by every database opened there.
 *
 * @module
 */

import type { Sqlite3Static } from "@sqlite.org/sqlite-wasm";

import init, { Core, Machine, initSync } from "../wasm/ferry_wasm.js";
import { FerryError, messageOf } from "./errors.js";

export { Core, Machine };
export type { Sqlite3Static };

/**
 * Where the WebAssembly modules come from, for an app whose bundler moves them: by default
 * each is found beside its JavaScript (`new URL(…, import.meta.url)`), and in Node read from
 * the package's files.
 *
 * @example
 * ```ts
 * import ferryWasm from "@ferry/sdk/wasm/ferry_wasm_bg.wasm?url"; // a bundler's asset URL
 * const db = await openDatabase({ model, storage: memoryStorage(), wasm: { ferry: ferryWasm } });
 * ```
 */
export interface WasmLocation {
  /** Ferry's core: a URL, or the module's bytes, or a compiled module. */
  ferry?: string | URL | BufferSource | WebAssembly.Module;
  /** SQLite's `sqlite3.wasm`, as a URL. */
  sqlite?: string | URL;
}

let ferryLoaded: Promise<void> | null = null;
let sqliteLoaded: Promise<Sqlite3Static> | null = null;

/** True when running in Node (not a browser or a worker). */
export function inNode(): boolean {
  const process = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof process?.versions?.node === "string";
}

/** Loads Ferry's core once; later calls wait for the same load. */
export function loadFerry(location: WasmLocation = {}): Promise<void> {
  ferryLoaded ??= (async () => {
    const given = location.ferry;
    if (given instanceof WebAssembly.Module || ArrayBuffer.isView(given) || given instanceof ArrayBuffer) {
      initSync({ module: given });
    } else if (given === undefined && inNode()) {
      // fetch() cannot read a file URL in Node: read the module's bytes from the package.
      const fsName = "node:fs/promises";
      const fs = (await import(/* @vite-ignore */ fsName)) as {
        readFile(path: URL): Promise<Uint8Array>;
      };
      initSync({ module: await fs.readFile(new URL("../wasm/ferry_wasm_bg.wasm", import.meta.url)) });
    } else {
      await init({ module_or_path: given ?? new URL("../wasm/ferry_wasm_bg.wasm", import.meta.url) });
    }
  })().catch((error: unknown) => {
    ferryLoaded = null;
    throw new FerryError("storage", `Ferry's WebAssembly core could not be loaded: ${messageOf(error)}`);
  });
  return ferryLoaded;
}

/** Loads SQLite once; later calls wait for the same load. */
export function loadSqlite(location: WasmLocation = {}): Promise<Sqlite3Static> {
  sqliteLoaded ??= (async () => {
    const options: Record<string, unknown> = {
      // SQLite's own console output would interleave with the app's; errors reach the caller.
      print: () => {},
      printErr: () => {},
    };
    const where = location.sqlite;
    if (where !== undefined) {
      options["locateFile"] = (file: string) => (file.endsWith(".wasm") ? String(where) : file);
    }
    // Loaded on first use: a page that runs the database in a Worker never loads SQLite itself.
    const module = await import("@sqlite.org/sqlite-wasm");
    const init = module.default as unknown as (options: Record<string, unknown>) => Promise<Sqlite3Static>;
    return await init(options);
  })().catch((error: unknown) => {
    sqliteLoaded = null;
    throw new FerryError("storage", `SQLite's WebAssembly module could not be loaded: ${messageOf(error)}`);
  });
  return sqliteLoaded;
}
