// The file contents check's page (files-check.html): runs checks in its worker
// (files-check-worker.ts, started once: OPFS databases open only in a dedicated Worker) and gives
// what the worker saw. The browser tests call `window.ferryFilesCheck.collect(kept, dropped)`
// and `window.ferryFilesCheck.locked(content)` with the bytes of the contents, and check the
// results themselves.

import type { CheckAnswer, CheckRequest, CollectResult, LockedResult } from "./files-check-protocol";

declare global {
  interface Window {
    ferryFilesCheck: {
      collect(kept: number[], dropped: number[]): Promise<CollectResult>;
      locked(content: number[]): Promise<LockedResult>;
    };
  }
}

const log = document.getElementById("files-check-log") as HTMLPreElement;

function say(line: string): void {
  log.textContent += `${line}\n`;
}

let worker: Worker | null = null;
let checks = 0;

/** The worker, started once; its failures reject the check under way. */
function checkWorker(): Worker {
  worker ??= new Worker(new URL("./files-check-worker.ts", import.meta.url), { type: "module", name: "ferry-files-check" });
  return worker;
}

/** A check as the page asks for it; the request adds its id and its database's name. */
type Ask = { check: "collect"; kept: number[]; dropped: number[] } | { check: "locked"; content: number[] };

function run<T extends CollectResult | LockedResult>(ask: Ask): Promise<T> {
  checks += 1;
  const id = checks;
  const request = { ...ask, type: "check", id, name: `ferry-files-check-${id}` } as CheckRequest;
  const target = checkWorker();
  return new Promise<T>((resolve, reject) => {
    const done = () => {
      target.removeEventListener("message", answered);
      target.removeEventListener("error", failed);
    };
    const answered = (event: MessageEvent<CheckAnswer>) => {
      const answer = event.data;
      if (answer.id !== id) return;
      done();
      if (answer.type === "check-done") {
        say(`check ${id} (${answer.check}): done`);
        resolve(answer as T);
      } else {
        say(`check ${id} (${request.check}) failed: ${answer.message}`);
        reject(new Error(answer.message));
      }
    };
    const failed = (event: ErrorEvent) => {
      done();
      reject(new Error(`the check's worker failed: ${event.message || "it could not be loaded"}`));
    };
    target.addEventListener("message", answered);
    target.addEventListener("error", failed);
    target.postMessage(request);
  });
}

window.ferryFilesCheck = {
  collect: (kept, dropped) => run<CollectResult>({ check: "collect", kept, dropped }),
  locked: (content) => run<LockedResult>({ check: "locked", content }),
};
