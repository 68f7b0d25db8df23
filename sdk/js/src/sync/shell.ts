/**
 * The shell around the sync core (`crates/ferry-client/src/sync/engine.rs` in Rust): runs one
 * job of a {@link Machine} by performing its actions (requests with `fetch`, reads and writes
 * of the device database, the download's transaction, waits, the clock, progress reports) and
 * feeding their results back as events, until the machine finishes. Every decision is the
 * machine's; the JSON of events and actions is `crates/ferry-wasm/src/wire.rs`'s.
 *
 * @module
 */

import type { Device } from "../device.js";
import { Meta } from "../device.js";
import { FerryError, messageOf } from "../errors.js";
import { hex } from "../storage.js";
import { Machine } from "../wasm.js";
import type { Step } from "./download.js";
import { DownloadWriter } from "./download.js";
import type { StoreWrite, SyncedRow } from "./store.js";
import * as store from "./store.js";
import type { Outgoing, Transport } from "./transport.js";
import { Unreachable } from "./transport.js";

/** How far a sync has come, as {@link SyncOptions.onProgress} is told. */
export interface Progress {
  /** The phase: `upload` (contents, then the objects) or `download`. */
  phase: "upload" | "download";
  /** The entity being downloaded (`null` while uploading). */
  entity: string | null;
  /** Objects done so far in this phase (or this entity). */
  objectsDone: number;
  /** Objects in all, when known. */
  objectsTotal: number | null;
  /** Bytes done so far. */
  bytesDone: number;
  /** Bytes in all, when known. */
  bytesTotal: number | null;
}

/** A job for the machine, as the wire writes it. */
export type Job =
  | { kind: "all" }
  | { kind: "unsynchronized" }
  | { kind: "selected"; objects: [string, string][] }
  | { kind: "follow-model" }
  | { kind: "sign-in"; user: string; password: string }
  | { kind: "call-action"; name: string; parameters: Record<string, unknown> };

/** How a job ended well, as the wire writes it. */
export type Done =
  | {
      kind: "synced";
      uploaded: number;
      rejected: { entity: string; id: string; reason: string }[];
      downloaded: Record<string, number>;
      removed: Record<string, number>;
      files_uploaded: number;
      files_downloaded: number;
    }
  | { kind: "model-followed" }
  | { kind: "signed-in"; user: string }
  | { kind: "acted"; result: unknown; synced: number; removed: number; skipped: number };

/** What the shell is given for a job. */
export interface ShellOptions {
  onProgress?: ((progress: Progress) => void) | undefined;
  signal?: AbortSignal | undefined;
}

type Body = { kind: "empty" } | { kind: "json"; text: string } | { kind: "content"; hash: string; entity: string; id: string } | { kind: "into-store"; hash: string };

type Action =
  | { kind: "send"; anonymous: boolean; method: string; path: string; body: Body }
  | { kind: "wait"; ms: number }
  | { kind: "look-up"; targets: [string, string][] }
  | { kind: "read-entity"; entity: string }
  | { kind: "read-revisions"; entity: string; ids: string[] }
  | { kind: "look-up-contents"; hashes: string[] }
  | { kind: "upgrade-model"; text: string }
  | { kind: "store"; store: StoreWrite }
  | { kind: "begin-download" }
  | { kind: "download"; step: Step }
  | { kind: "commit-download" }
  | { kind: "apply-synced"; synced: SyncedRow[]; removed: { entity: string; id: string }[] }
  | {
      kind: "progress";
      phase: "upload" | "download";
      entity: string | null;
      objects_done: number;
      objects_total: number | null;
      bytes_done: number;
      bytes_total: number | null;
    }
  | { kind: "read-clock" }
  | { kind: "read-journal"; except_epoch: string }
  | { kind: "read-dirty" }
  | { kind: "finish"; done?: Done; error?: Record<string, unknown> & { kind: string; message: string } };

type Event = Record<string, unknown> & { kind: string };

/** A server's answer: given to the core with its body as bytes (`Machine.handleAnswer`), not through JSON. */
interface AnswerEvent {
  kind: "answer";
  status: number;
  body: Uint8Array;
}

/** The core's next actions after an event. */
function next(machine: Machine, event: Event | AnswerEvent): Action[] {
  const text = isAnswer(event) ? machine.handleAnswer(event.status, event.body) : machine.handle(JSON.stringify(event));
  return JSON.parse(text) as Action[];
}

function isAnswer(event: Event | AnswerEvent): event is AnswerEvent {
  return event.kind === "answer" && event.body instanceof Uint8Array;
}

/**
 * Where in the core's actions a request may be sent before the actions ahead of it are
 * performed: a `GET` whose answer goes to the core (a download's next page), preceded only by
 * writes of the download and progress reports, which the request does not depend on; -1 when
 * there is none.
 */
function earlySend(actions: readonly Action[]): number {
  for (const [index, action] of actions.entries()) {
    if (action.kind === "send") return index > 0 && action.method === "GET" && action.body.kind !== "into-store" ? index : -1;
    if (action.kind !== "download" && action.kind !== "progress") return -1;
  }
  return -1;
}

/** Runs one job of the sync core to its end; gives how it ended well, or throws why it did not. */
export async function drive(device: Device, transport: Transport, job: Job, options: ShellOptions): Promise<Done> {
  await device.ready();
  const shell = new Shell(device, transport, job, options);
  return await shell.run();
}

class Shell {
  readonly #device: Device;
  readonly #transport: Transport;
  readonly #job: Job;
  readonly #options: ShellOptions;
  #token: string;
  #writer: DownloadWriter | null = null;
  /** A session renewed while the download's transaction is open: kept once it ends. */
  #renewed: StoreWrite | null = null;

  constructor(device: Device, transport: Transport, job: Job, options: ShellOptions) {
    this.#device = device;
    this.#transport = transport;
    this.#job = job;
    this.#options = options;
    // Only a sign-in goes without a token.
    const token = job.kind === "sign-in" ? "" : device.meta(Meta.token);
    if (token === null) {
      throw new FerryError("not-signed-in", "not signed in, or the session expired: sign in again (no one has signed in on this device)");
    }
    this.#token = token;
  }

  async run(): Promise<Done> {
    const machine = new Machine(this.#device.core);
    const signal = this.#options.signal;
    let cancelTold = false;
    const cancel = () => {
      if (!cancelTold) {
        cancelTold = true;
        machine.handle(JSON.stringify({ kind: "cancel" }));
      }
    };
    signal?.addEventListener("abort", cancel);
    let failed = false;
    try {
      let event: Event | AnswerEvent = this.#start();
      // A job cancelled before it starts stops at the machine's first step.
      if (signal?.aborted === true) cancel();
      for (;;) {
        const actions = next(machine, event);
        // The request for a download's next page goes out before the page the core gave with it
        // is written, so the server prepares the next while the device writes this one.
        const early = earlySend(actions);
        const sent = early === -1 ? null : this.#send(actions[early] as Extract<Action, { kind: "send" }>);
        // Should a write before it fail, the job ends with that failure, not the request's.
        sent?.catch(() => {});
        let answer: Event | AnswerEvent | null = null;
        for (const [index, action] of actions.entries()) {
          if (action.kind === "finish") return this.#finished(action);
          answer = (index === early && sent !== null ? await sent : await this.#perform(action)) ?? answer;
        }
        if (answer === null) throw new FerryError("corrupt", "the sync core stopped without asking for anything or finishing");
        event = answer;
      }
    } catch (error) {
      failed = true;
      throw error;
    } finally {
      signal?.removeEventListener("abort", cancel);
      machine.free();
      // An unfinished download is rolled back whole; a session renewed during it is kept.
      this.#writer?.rollback();
      this.#writer = null;
      if (this.#renewed !== null) store.write(this.#device, this.#transport.server, this.#renewed);
      // A failure to write the database back does not hide why the job failed.
      const persisted = this.#device.persist();
      await (failed ? persisted.catch(() => {}) : persisted);
    }
  }

  /** The start of the job, with what the device holds. */
  #start(): Event {
    const device = this.#device;
    const job = this.#job;
    const syncing = job.kind === "all" || job.kind === "unsynchronized" || job.kind === "selected";
    const signingIn = job.kind === "sign-in";
    const pending = syncing || signingIn ? store.pendingUpload(device) : null;
    // A sign-in counts every change; a sync that resends a stored upload needs none.
    const dirty = (syncing && pending === null) || signingIn ? store.dirtyChanges(device) : [];
    return {
      kind: "start",
      job,
      device: syncing ? store.deviceName(device) : "",
      upload_id: store.randomToken(),
      seed: crypto.getRandomValues(new Uint32Array(1))[0] ?? 0,
      started: new Date().toISOString(),
      user: device.meta(Meta.user),
      refresh_token: device.meta(Meta.refreshToken),
      pending,
      dirty,
      server_epoch: device.meta(Meta.serverEpoch) ?? "",
    };
  }

  /** Performs one action; gives the event that answers it, when it is one that waits. */
  async #perform(action: Action): Promise<Event | AnswerEvent | null> {
    const device = this.#device;
    switch (action.kind) {
      case "send":
        return await this.#send(action);
      case "wait":
        await new Promise((resolve) => setTimeout(resolve, action.ms));
        return { kind: "timer" };
      case "look-up":
        return { kind: "looked-up", facts: store.lookUp(device, action.targets) };
      case "read-entity":
        return { kind: "entity-state", ...store.entityState(device, action.entity) };
      case "read-revisions":
        return { kind: "revisions", revisions: store.revisions(device, action.entity, action.ids) };
      case "look-up-contents": {
        const held: string[] = [];
        for (const hash of action.hashes) if (await device.files.has(hash)) held.push(hash);
        return { kind: "contents-held", hashes: held };
      }
      case "upgrade-model": {
        const changed = device.upgradeModel(action.text);
        await device.persist();
        return { kind: "model-upgraded", model: changed ? action.text : null };
      }
      case "store":
        if (action.store.kind === "refreshed") this.#token = action.store.token;
        if (action.store.kind === "refreshed" && this.#writer?.holdsTransaction === true) {
          this.#renewed = action.store;
          return null;
        }
        store.write(device, this.#transport.server, action.store);
        await device.persist();
        return null;
      case "begin-download":
        this.#writer = new DownloadWriter(device);
        return null;
      case "download":
        this.#writer?.write(action.step);
        return null;
      case "commit-download": {
        const writer = this.#writer;
        if (writer === null) throw new FerryError("corrupt", "the sync core committed a download it did not begin");
        const applied = writer.commit();
        this.#writer = null;
        if (this.#renewed !== null) {
          store.write(device, this.#transport.server, this.#renewed);
          this.#renewed = null;
        }
        device.tell(applied.touched, false);
        await device.persist();
        return { kind: "committed", downloaded: applied.downloaded, removed: applied.removed };
      }
      case "apply-synced": {
        const removed = store.applySynced(device, action.synced, action.removed);
        await device.persist();
        return { kind: "committed", downloaded: {}, removed };
      }
      case "progress":
        this.#options.onProgress?.({
          phase: action.phase,
          entity: action.entity,
          objectsDone: action.objects_done,
          objectsTotal: action.objects_total,
          bytesDone: action.bytes_done,
          bytesTotal: action.bytes_total,
        });
        return null;
      case "read-clock":
        return { kind: "clock", at: new Date().toISOString() };
      case "read-journal":
        return { kind: "journal", rows: store.journal(device, action.except_epoch) };
      case "read-dirty":
        return { kind: "dirty", changes: store.dirtyChanges(device) };
      case "finish":
        throw new FerryError("corrupt", "a finish is handled by the loop");
    }
  }

  /**
   * Sends a request: a network failure is an event for the core; a local one (a content
   * missing from the store, a content that arrived damaged) ends the job.
   */
  async #send(action: Extract<Action, { kind: "send" }>): Promise<Event | AnswerEvent> {
    const files = this.#device.files;
    const request: Outgoing = {
      method: action.method,
      path: action.path,
      token: action.anonymous ? null : this.#token,
      body: null,
    };
    const body = action.body;
    if (body.kind === "json") request.body = { json: body.text };
    if (body.kind === "content") {
      const content = await files.get(body.hash);
      if (content === null) {
        throw new FerryError("file-missing", `the content of \`${body.entity}\` ${body.id} is not on this device`, { entity: body.entity, id: body.id });
      }
      request.body = { content };
    }
    let arrived: Blob | null = null;
    let answered;
    try {
      answered = await this.#transport.exchange(request, body.kind === "into-store" ? (content) => (arrived = content) : undefined);
    } catch (error) {
      if (error instanceof Unreachable) return { kind: "unreachable", reason: error.message };
      throw error;
    }
    if (body.kind === "into-store" && answered.status === 200 && arrived !== null) {
      const content: Blob = arrived;
      const hash = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", await content.arrayBuffer())));
      if (hash !== body.hash) {
        throw new FerryError("corrupt", `the device database is damaged: a content arrived with SHA-256 ${hash} where ${body.hash} was expected`);
      }
      await files.put(hash, content);
    }
    return { kind: "answer", status: answered.status, body: answered.body };
  }

  /** The job's end: its result, or its error as a {@link FerryError}. */
  #finished(action: Extract<Action, { kind: "finish" }>): Done {
    if (action.done !== undefined) return action.done;
    const { kind, message, ...fields } = action.error ?? { kind: "corrupt", message: "the sync core finished without an outcome" };
    if (kind === "unreachable") {
      const reason = String(fields["reason"] ?? "");
      throw new FerryError(
        "unreachable",
        `cannot reach the server at ${this.#transport.address}: ${reason}; check the connection and sync again`,
        { ...fields, server: this.#transport.address },
      );
    }
    throw new FerryError(kind, messageOf(message), fields);
  }
}
