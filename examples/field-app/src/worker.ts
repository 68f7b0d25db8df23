// The app's dedicated Worker: the Ferry SDK serves the device database (in OPFS, through
// sqlite-wasm's `opfs-sahpool` VFS, which only a Worker can use) and the sync engine to the
// page, which reaches them with `connectWorker` (see main.ts).

import { serveWorker } from "@ferry/sdk/worker";

serveWorker();
