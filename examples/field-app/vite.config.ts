// Builds the field app into dist/: the page, the worker that runs the Ferry SDK (with its
// WebAssembly modules), the public files (manifest, icons) and the service worker; and the sync
// benchmark's page (bench.html) and the browser tests' file contents check (files-check.html),
// each with its worker, which the app's shell leaves out.

import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

import { serviceWorker } from "./scripts/service-worker-plugin.ts";

export default defineConfig({
  // Relative URLs: the app works at the server's root and under a reverse proxy's path alike.
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // WebAssembly and icons stay files of their own, for the service worker to cache.
    assetsInlineLimit: 0,
    rolldownOptions: {
      input: {
        index: fileURLToPath(new URL("./index.html", import.meta.url)),
        bench: fileURLToPath(new URL("./bench.html", import.meta.url)),
        "files-check": fileURLToPath(new URL("./files-check.html", import.meta.url)),
      },
    },
  },
  worker: {
    format: "es",
  },
  // `npm run dev`: the API of a Ferry server (FERRY_SERVER, by default the one `npm run demo`
  // starts) behind the development server's origin, as `ferry serve --app` has it.
  server: {
    proxy: { "/v1": process.env.FERRY_SERVER ?? "http://127.0.0.1:8750" },
    // The SDK is linked from sdk/js, outside this folder; its WebAssembly is served from there.
    fs: { allow: [".", fileURLToPath(new URL("../../sdk/js", import.meta.url))] },
  },
  optimizeDeps: {
    // sqlite-wasm finds its .wasm beside its own module; pre-bundling would move it.
    exclude: ["@sqlite.org/sqlite-wasm", "@ferry/sdk"],
  },
  plugins: [
    serviceWorker(fileURLToPath(new URL("./src/sw/service-worker.js", import.meta.url)), {
      // The benchmark's and the file contents check's pages and scripts are no part of the app a
      // device keeps offline.
      leftOut: [
        /^bench\.html$/,
        /^assets\/bench(-worker)?-[^/]*\.js$/,
        /^files-check\.html$/,
        /^assets\/files-check(-worker)?-[^/]*\.js$/,
      ],
    }),
  ],
});
