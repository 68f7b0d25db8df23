/**
 * Live mode (`crates/ferry-client/src/sync/live.rs` in Rust): the engine keeps the server's
 * live stream open and syncs when the server says that something the user downloads changed,
 * and shortly after each local commit. The stream is Server-Sent Events that need the bearer
 * token, so it is read with `fetch` and a stream reader (an `EventSource` cannot send one).
 * The hints carry no data: every change still comes by an incremental sync, so a hint lost,
 * late or given twice changes nothing of what the device ends with. Offline it connects again
 * after a jittered, growing wait.
 *
 * @module
 */

import type { Device } from "./device.js";
import { Meta } from "./device.js";
import { FerryError } from "./errors.js";
import type { SyncOptions, SyncReport } from "./engine.js";
import type { Transport } from "./sync/transport.js";
import { ANSWER_IDLE_TIMEOUT_MS, failure } from "./sync/transport.js";

/** How long live mode waits after a local commit for the ones that follow it before it syncs, in milliseconds. */
export const LIVE_DEBOUNCE_MS = 20;
/** The first wait before connecting again after the stream was lost, in milliseconds; it doubles with each failure, jittered. */
export const LIVE_RETRY_MS_MIN = 500;
/** The longest wait before connecting again, in milliseconds. */
export const LIVE_RETRY_MS_MAX = 30_000;
/** The longest event the live stream may send, in bytes. */
export const LIVE_EVENT_BYTES_MAX = 64 * 1024;
/** How long live mode waits before it tries again when the app's own sync is running, in milliseconds. */
const BUSY_RETRY_MS = 100;

/** What live mode tells the app. */
export interface LiveCallbacks {
  /** A sync of live mode completed. */
  onSync?: (report: SyncReport) => void;
  /**
   * A sync of live mode failed (it is tried again after a growing wait, or at the next hint or
   * commit), or live mode ended because going on cannot help (the session ended, another
   * protocol): then `onState("disconnected")` follows and live mode is over.
   */
  onError?: (error: FerryError) => void;
  /** The stream opened (`connected`: the server will say when something changes) or was lost (`disconnected`). */
  onState?: (state: "connected" | "disconnected") => void;
}

/** The wait before the `failures`-th attempt again: doubling from the minimum up to the maximum, each between half and all of it. */
export function retryDelay(failures: number, random: number): number {
  const full = Math.min(LIVE_RETRY_MS_MIN * 2 ** Math.min(Math.max(failures - 1, 0), 16), LIVE_RETRY_MS_MAX);
  const half = Math.floor(full / 2);
  return half + (random % (half + 1));
}

function random(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0] ?? 0;
}

/** Errors after which going on cannot help. */
function fatal(error: FerryError): boolean {
  return error.kind === "not-signed-in" || error.kind === "protocol" || error.kind === "closed";
}

type Ended = { kind: "stopped" } | { kind: "closed" } | { kind: "refused" } | { kind: "failed"; reason: string };

/** One run of live mode, from its start to its stop. */
export class LiveMode {
  readonly #device: Device;
  readonly #transport: Transport;
  readonly #sync: (options: SyncOptions) => Promise<SyncReport>;
  readonly #callbacks: LiveCallbacks;
  readonly #ended: () => void;
  #stopped = false;
  #stream: AbortController | null = null;
  #wakeSleep: (() => void) | null = null;
  #loop: Promise<void> = Promise.resolve();
  #syncing: Promise<void> | null = null;
  #due = false;
  #syncFailures = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    device: Device,
    transport: Transport,
    sync: (options: SyncOptions) => Promise<SyncReport>,
    callbacks: LiveCallbacks,
    ended: () => void,
  ) {
    this.#device = device;
    this.#transport = transport;
    this.#sync = sync;
    this.#callbacks = callbacks;
    this.#ended = ended;
  }

  start(): void {
    this.#loop = this.#run();
  }

  /** Stops live mode; resolves once its stream is closed and its sync, if one runs, ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stream?.abort();
    this.#wakeSleep?.();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#loop;
    await this.#syncing;
  }

  async #run(): Promise<void> {
    let failures = 0;
    try {
      while (!this.#stopped) {
        const ended = await this.#open(() => (failures = 0));
        if (this.#stopped || ended.kind === "stopped") break;
        if (ended.kind === "closed") continue;
        if (ended.kind === "refused") {
          // The sync's first request renews the session (or ends live mode).
          await this.#syncNow();
          continue;
        }
        failures += 1;
        this.#callbacks.onState?.("disconnected");
        await this.#sleep(retryDelay(failures, random()));
      }
    } finally {
      this.#stopped = true;
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#ended();
    }
  }

  /** Opens the stream once and serves it until it ends. */
  async #open(connected: () => void): Promise<Ended> {
    const token = this.#device.closed ? null : this.#device.meta(Meta.token);
    if (token === null) {
      this.#end(new FerryError("not-signed-in", "not signed in, or the session expired: sign in again (no one has signed in on this device)"));
      return { kind: "stopped" };
    }
    const controller = new AbortController();
    this.#stream = controller;
    let stalled = false;
    let idle: ReturnType<typeof setTimeout> | null = null;
    const watchIdle = () => {
      if (idle !== null) clearTimeout(idle);
      idle = setTimeout(() => {
        stalled = true;
        controller.abort();
      }, ANSWER_IDLE_TIMEOUT_MS);
    };
    // Local commits made while the stream is open are synced shortly after.
    const unsubscribe = this.#device.subscribe((change) => {
      if (change.local) this.#later(LIVE_DEBOUNCE_MS);
    });
    try {
      watchIdle();
      let response: Response;
      try {
        response = await fetch(`${this.#transport.server}/v1/live`, {
          headers: { authorization: `Bearer ${token}`, accept: "text/event-stream" },
          signal: controller.signal,
        });
      } catch (error) {
        return this.#stopped ? { kind: "stopped" } : { kind: "failed", reason: stalled ? "the answer stalled (timed out)" : failure(error) };
      }
      if (response.status === 401) {
        await response.body?.cancel().catch(() => {});
        return { kind: "refused" };
      }
      if (response.status !== 200 || response.body === null) {
        await response.body?.cancel().catch(() => {});
        return { kind: "failed", reason: `the server answered ${response.status}` };
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let pending = "";
      for (;;) {
        watchIdle();
        let piece: ReadableStreamReadResult<Uint8Array>;
        try {
          piece = await reader.read();
        } catch (error) {
          if (this.#stopped) return { kind: "stopped" };
          return { kind: "failed", reason: stalled ? "the answer stalled (timed out)" : failure(error) };
        }
        if (piece.done) return { kind: "closed" };
        pending += decoder.decode(piece.value, { stream: true }).replace(/\r\n?/g, "\n");
        for (let end = pending.indexOf("\n\n"); end >= 0; end = pending.indexOf("\n\n")) {
          const block = pending.slice(0, end);
          pending = pending.slice(end + 2);
          const name = block
            .split("\n")
            .find((line) => line.startsWith("event:"))
            ?.slice("event:".length)
            .trim();
          if (name === "ready") {
            connected();
            this.#callbacks.onState?.("connected");
            this.#wake();
          } else if (name === "changed") {
            this.#wake();
          }
        }
        if (pending.length > LIVE_EVENT_BYTES_MAX) {
          controller.abort();
          return { kind: "failed", reason: `the live stream sent an event of more than ${LIVE_EVENT_BYTES_MAX} bytes` };
        }
      }
    } finally {
      unsubscribe();
      if (idle !== null) clearTimeout(idle);
      this.#stream = null;
      controller.abort();
    }
  }

  /** Asks for a sync now. */
  #wake(): void {
    this.#due = true;
    if (this.#syncing === null) this.#syncing = this.#syncWhileDue().finally(() => (this.#syncing = null));
  }

  /** Asks for a sync after `ms` milliseconds (a later ask moves it). */
  #later(ms: number): void {
    if (this.#stopped) return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#wake();
    }, ms);
  }

  /** Runs a sync now and waits for it (and any asked meanwhile). */
  async #syncNow(): Promise<void> {
    this.#wake();
    await this.#syncing;
  }

  async #syncWhileDue(): Promise<void> {
    while (this.#due && !this.#stopped) {
      this.#due = false;
      try {
        const report = await this.#sync({ mode: "all" });
        this.#syncFailures = 0;
        this.#callbacks.onSync?.(report);
      } catch (error) {
        const failed = error instanceof FerryError ? error : new FerryError("corrupt", String(error));
        if (failed.kind === "already-running") {
          this.#later(BUSY_RETRY_MS);
        } else if (fatal(failed)) {
          this.#end(failed);
        } else {
          this.#syncFailures += 1;
          this.#callbacks.onError?.(failed);
          this.#later(retryDelay(this.#syncFailures, random()));
        }
      }
    }
  }

  /** Ends live mode because going on cannot help. */
  #end(error: FerryError): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#stream?.abort();
    this.#wakeSleep?.();
    this.#callbacks.onError?.(error);
    this.#callbacks.onState?.("disconnected");
  }

  /** Waits `ms` milliseconds, or until live mode stops. */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wakeSleep = done;
    });
  }
}
