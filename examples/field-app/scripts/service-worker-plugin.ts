// A Vite plugin that writes the app's service worker after a build: the template
// (src/sw/service-worker.js) with the list of every file the build wrote (the app shell) and a
// version made from their contents, so each build installs a cache of its own files.

import { createHash } from "node:crypto";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import type { Plugin, ResolvedConfig } from "vite";

/** The service worker's file name in the build, at the app's root (its scope is the app). */
export const SERVICE_WORKER_FILE = "sw.js";

/** Files of the build the shell leaves out: source maps are for developers only. */
const LEFT_OUT = [/\.map$/];

/** What the shell leaves out besides source maps. */
export interface ServiceWorkerOptions {
  /** Files of the build (paths relative to it, with `/`) that are no part of the app's shell. */
  leftOut?: RegExp[];
}

export function serviceWorker(template: string, options: ServiceWorkerOptions = {}): Plugin {
  const leftOut = [...LEFT_OUT, ...(options.leftOut ?? [])];
  let config: ResolvedConfig;
  return {
    name: "ferry-field-service-worker",
    apply: "build",
    configResolved(resolved) {
      config = resolved;
    },
    closeBundle() {
      const outDir = config.build.outDir;
      const files = listFiles(outDir)
        .map((path) => relative(outDir, path).split(sep).join("/"))
        .filter((file) => file !== SERVICE_WORKER_FILE && !leftOut.some((pattern) => pattern.test(file)))
        .sort();
      if (!files.includes("index.html")) {
        throw new Error(`the service worker needs index.html in ${outDir}, which the build did not write`);
      }
      const hash = createHash("sha256");
      for (const file of files) {
        hash.update(file).update("\0").update(readFileSync(join(outDir, file))).update("\0");
      }
      const version = hash.digest("hex").slice(0, 16);
      const source = readFileSync(template, "utf8");
      for (const placeholder of ["__SHELL_FILES__", "__SHELL_VERSION__"]) {
        if (!source.includes(placeholder)) {
          throw new Error(`the service worker template ${template} lacks ${placeholder}`);
        }
      }
      const worker = source
        .replace("__SHELL_FILES__", JSON.stringify(files, null, 2))
        .replace("__SHELL_VERSION__", JSON.stringify(version));
      writeFileSync(join(outDir, SERVICE_WORKER_FILE), worker);
      config.logger.info(`service worker: ${files.length} shell files, version ${version}`);
    },
  };
}

function listFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const path = join(directory, entry.name);
    return entry.isDirectory() ? listFiles(path) : entry.isFile() ? [path] : [];
  });
}
