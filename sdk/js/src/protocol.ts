/**
 * The messages between a page and the Worker that runs its device database
 * (`@ferry/sdk/worker` on the Worker's side, {@link connectWorker} on the page's). Everything
 * sent is plain data (objects, blobs, reports), so it crosses with `postMessage` as it is.
 *
 * Page to Worker:
 * - `{type: "open", id, model, storage, server}`: open the database (`storage` is the OPFS
 *   name) and make the sync engine; answered once, with `{database: {modelText}}`.
 * - `{type: "call", id, target: "db" | "engine", method, args}`: call a method; answered with
 *   its value.
 * - `{type: "cancel", id}`: abort the sync of call `id` (its `AbortSignal` fired on the page).
 * - `{type: "watch", id, entity, constraint, options}` / `{type: "unwatch", id}`.
 *
 * Worker to page:
 * - `{type: "result", id, value}` or `{type: "result", id, error: {kind, message, fields}}`.
 * - `{type: "progress", id, progress}`: a progress report of sync call `id`.
 * - `{type: "watched", id, objects}` / `{type: "watch-error", id, error}`.
 * - `{type: "live", event: "sync" | "error" | "state", value}`: live mode's callbacks.
 * - `{type: "syncing", value}`: a job started or ended on the database.
 * - `{type: "model", text}`: the database moved to the server's new model.
 *
 * @module
 */

import { FerryError, messageOf } from "./errors.js";

/** What a message channel needs to offer: a `Worker`, a Worker's global scope, or a `MessagePort`. */
export interface MessageEndpoint {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (event: MessageEvent) => void): void;
  removeEventListener?(type: "message", listener: (event: MessageEvent) => void): void;
  start?(): void;
}

/** An error as it crosses the channel. */
export interface WireError {
  kind: string;
  message: string;
  fields: Record<string, unknown>;
}

/** An error for the channel. */
export function errorToWire(error: unknown): WireError {
  if (error instanceof FerryError) return { kind: error.kind, message: error.message, fields: plain(error.fields) };
  return { kind: "worker", message: messageOf(error), fields: {} };
}

/** The error that crossed the channel, as a {@link FerryError} again. */
export function errorFromWire(error: WireError): FerryError {
  return new FerryError(error.kind, error.message, error.fields);
}

/** Fields that structured cloning takes (functions and the like dropped). */
function plain(fields: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === null || ["string", "number", "boolean"].includes(typeof value)) kept[key] = value;
  }
  return kept;
}
