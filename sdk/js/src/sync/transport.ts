/**
 * Requests to the server with `fetch`, as the Rust SDK's transport sends them
 * (`crates/ferry-client/src/sync/transport.rs`): the bearer token unless the request is
 * anonymous, JSON bodies or file contents, and a deadline on every step that waits on the
 * network, so a silent server or a stalled answer ends as a network failure (which the sync
 * core retries) rather than a hang.
 *
 * @module
 */

import { FerryError, messageOf } from "../errors.js";
import { FILE_BYTES_MAX } from "../database.js";

/** How long a request may wait for its answer to begin, in milliseconds. */
export const ANSWER_TIMEOUT_MS = 120_000;
/** How long an answer's body may pause between two pieces, in milliseconds. */
export const ANSWER_IDLE_TIMEOUT_MS = 30_000;
/** The largest answer body read into memory, in bytes. */
export const RESPONSE_BYTES_MAX = 256 * 1024 * 1024;
/** The slowest a file content may be sent, in bytes per second: its request may take the answer's deadline plus its size at this rate. */
export const FILE_SEND_RATE_MIN_BYTES_PER_S = 64 * 1024;

/** A network failure: nothing came back, or not whole. */
export class Unreachable extends Error {}

/** A request to send. */
export interface Outgoing {
  method: string;
  /** The path and query, as `/v1/download/Field.Site?after=…`. */
  path: string;
  /** The bearer token, or `null` for an anonymous request (a sign-in). */
  token: string | null;
  /** A JSON body, a file content, or none. */
  body: { json: string } | { content: Blob } | null;
}

/** An answer: its status and, unless it went to a sink, its body's bytes. */
export interface Answered {
  status: number;
  body: Uint8Array;
}

/**
 * The server's address as the Rust SDK keeps it (`scheme://host:port[/prefix]`, port always
 * written), checked: `https://` anywhere, plain `http://` only to this machine.
 */
export function serverAddress(server: string): { name: string; address: string } {
  const bad = () =>
    new FerryError(
      "bad-server",
      `\`${server}\` is not a server address such as https://sync.example.com or https://example.com/ferry (plain http:// only to this machine, as http://127.0.0.1:8750)`,
      { server },
    );
  let text = server;
  if (text === "") {
    const origin = (globalThis as { location?: { origin?: string } }).location?.origin;
    if (typeof origin !== "string" || origin === "null") throw bad();
    text = origin;
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad();
  }
  const scheme = url.protocol.slice(0, -1);
  if ((scheme !== "http" && scheme !== "https") || url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw bad();
  }
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const loopback = host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
  if (scheme === "http" && !loopback) throw bad();
  const port = url.port !== "" ? url.port : scheme === "https" ? "443" : "80";
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  const prefix = url.pathname.replace(/\/+$/, "");
  return { name: `${scheme}://${address}${prefix}`, address };
}

/** Sends requests to one server. */
export class Transport {
  /** The server as the device database keeps it. */
  readonly server: string;
  /** `host:port`, for errors. */
  readonly address: string;

  constructor(server: string) {
    const parsed = serverAddress(server);
    this.server = parsed.name;
    this.address = parsed.address;
  }

  /**
   * Sends a request and reads its answer. With `intoBlob`, the body of a 200 answer is kept as
   * a `Blob` of at most `FILE_BYTES_MAX` bytes (given to `intoBlob`) and the answer's text is empty.
   * A network failure throws {@link Unreachable}.
   */
  async exchange(request: Outgoing, intoBlob?: (content: Blob) => void): Promise<Answered> {
    const headers: Record<string, string> = {};
    let body: string | Blob | undefined;
    let deadline = ANSWER_TIMEOUT_MS;
    if (request.body !== null && "json" in request.body) {
      headers["content-type"] = "application/json";
      body = request.body.json;
    } else if (request.body !== null) {
      headers["content-type"] = "application/octet-stream";
      body = request.body.content;
      deadline += Math.floor(request.body.content.size / FILE_SEND_RATE_MIN_BYTES_PER_S) * 1000;
    }
    if (request.token !== null) headers["authorization"] = `Bearer ${request.token}`;
    const controller = new AbortController();
    let timedOut = "";
    let timer = setTimeout(() => {
      timedOut = "the answer did not begin in time (timed out)";
      controller.abort();
    }, deadline);
    try {
      let response: Response;
      try {
        // A redirect is an answer, as the Rust SDK's client never follows one: the core refuses it.
        const init: RequestInit = { method: request.method, headers, signal: controller.signal, redirect: "manual" };
        if (body !== undefined) init.body = body;
        response = await fetch(`${this.server}${request.path}`, init);
      } catch (error) {
        throw new Unreachable(timedOut || failure(error));
      }
      const limit = intoBlob !== undefined && response.status === 200 ? FILE_BYTES_MAX : RESPONSE_BYTES_MAX;
      const chunks: Uint8Array[] = [];
      let size = 0;
      if (response.body !== null) {
        const reader = response.body.getReader();
        for (;;) {
          clearTimeout(timer);
          timer = setTimeout(() => {
            timedOut = "the answer stalled (timed out)";
            controller.abort();
          }, ANSWER_IDLE_TIMEOUT_MS);
          let piece: ReadableStreamReadResult<Uint8Array>;
          try {
            piece = await reader.read();
          } catch (error) {
            throw new Unreachable(timedOut || failure(error));
          }
          if (piece.done) break;
          size += piece.value.length;
          if (size > limit) {
            controller.abort();
            if (limit === FILE_BYTES_MAX) {
              // A content over the limit is refused on the device, not retried as a network failure.
              throw new FerryError("file-too-large", `a file content of more than ${limit} bytes`, { limit });
            }
            throw new Unreachable(`an answer of more than ${limit} bytes`);
          }
          chunks.push(piece.value);
        }
      }
      if (intoBlob !== undefined && response.status === 200) {
        intoBlob(new Blob(chunks as BlobPart[]));
        return { status: 200, body: new Uint8Array(0) };
      }
      // A manual redirect reads as status 0 ("opaqueredirect") in browsers; it is a 3xx.
      const status = response.type === "opaqueredirect" ? 307 : response.status;
      return { status, body: joined(chunks, size) };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Pieces of a body as one run of bytes (the piece itself when there is one). */
function joined(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const whole = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.length;
  }
  return whole;
}

/** A failure of `fetch`, with the causes under it (its own message alone says little, as "fetch failed"). */
export function failure(error: unknown): string {
  let reason = messageOf(error);
  let cause = (error as { cause?: unknown } | null)?.cause;
  while (cause !== undefined && cause !== null) {
    reason += `: ${messageOf(cause)}`;
    cause = (cause as { cause?: unknown }).cause;
  }
  return reason;
}
