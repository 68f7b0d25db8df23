/**
 * Watched queries: a query's result, given at once and then again each time a write on the
 * device (an app commit or deletion, an applied download, an upload's answer, a server
 * action's objects, a clear, a new user) changes it, and not otherwise.
 *
 * @module
 */

import type { Change, Device } from "./device.js";
import { messageOf } from "./errors.js";
import type { FerryObject } from "./objects.js";

/** How long a watch waits after a write for the ones that follow it before it reads again, in milliseconds. */
export const WATCH_DEBOUNCE_MS = 5;

/**
 * A watched query; {@link Watch.close} ends it.
 *
 * @example
 * ```ts
 * const watch = db.watch("Field.WorkOrder", "[Status = 'Open']", { sort: [["Number", "asc"]] }, (orders) => {
 *   render(orders);
 * });
 * // later
 * watch.close();
 * ```
 */
export interface Watch {
  /** Stops the watch: its callback is not called again. */
  close(): void;
}

/** Options of a watch besides its query's. */
export interface WatchCallbacks {
  /** Called with each result set that differs from the last one given. */
  onResult(objects: FerryObject[]): void;
  /** Called when reading the result, or the app's callback, failed. */
  onError?: (error: unknown) => void;
}

/**
 * Runs a watch: `read` gives the query's result now; `relevant` says whether a change may
 * have changed it.
 */
export function startWatch(
  device: Device,
  entity: string,
  followsPaths: boolean,
  read: () => Promise<FerryObject[]>,
  callbacks: WatchCallbacks,
): Watch {
  let closed = false;
  let last: string | null = null;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let reading = false;
  let again = false;

  const report = (error: unknown) => {
    if (callbacks.onError !== undefined) callbacks.onError(error);
    else console.error(`a watch of ${entity} failed: ${messageOf(error)}`);
  };

  const run = async (): Promise<void> => {
    if (closed) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    try {
      const objects = await read();
      const shown = JSON.stringify(objects.map((object) => [object.id, object.values]));
      if (!closed && shown !== last) {
        last = shown;
        try {
          callbacks.onResult(objects);
        } catch (error) {
          report(error);
        }
      }
    } catch (error) {
      if (!closed && !device.closed) report(error);
    } finally {
      reading = false;
    }
    if (again) {
      again = false;
      await run();
    }
  };

  const onChange = (change: Change) => {
    // A constraint with a path reads other entities too: any write may change its result.
    if (closed || (!followsPaths && !change.entities.has(entity))) return;
    if (timer !== null) return;
    timer = setTimeout(() => {
      timer = null;
      void run();
    }, WATCH_DEBOUNCE_MS);
  };

  const unsubscribe = device.subscribe(onChange);
  device.closers.add(close);
  queueMicrotask(() => void run());

  function close(): void {
    closed = true;
    unsubscribe();
    device.closers.delete(close);
    if (timer !== null) clearTimeout(timer);
    timer = null;
  }
  return { close };
}
