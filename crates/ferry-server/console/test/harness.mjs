// What the console's browser tests stand on: a real `ferry serve` on a fresh SQLite database,
// users added with `ferry user add`, devices driven by `ferry device`, the console served either
// by the server itself or (with FERRY_CONSOLE_DIR) from this folder by a small static server
// that passes every other path to `ferry serve`, and headless Chromium (the machine's own,
// driven by playwright-core) with every console message and page error collected.

import { mkdirSync, readFileSync } from "node:fs";
import http from "node:http";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { PNG } from "pngjs";

import { CHROMIUM_CONTEXT, FerryServer, ferry } from "../../../../test-support/ferry.mjs";

export { MODEL_FILE, cleanup, colourCount, temporaryDirectory } from "../../../../test-support/ferry.mjs";

/** The console's folder. */
export const CONSOLE_DIR = fileURLToPath(new URL("../", import.meta.url));
/** Where screenshots go (gitignored). */
export const RESULTS_DIR = join(CONSOLE_DIR, "test-results");
/** The console's files to serve instead of the binary's own, when set. */
export const FILES_DIR = process.env.FERRY_CONSOLE_DIR ? resolve(process.env.FERRY_CONSOLE_DIR) : null;
/** How long a browser message the test expects may take to arrive, in milliseconds. */
const MESSAGE_WAIT_MS_MAX = 5_000;

/**
 * The content security policy the test's server sends with the console's files: only the
 * console's own origin, no inline code, no framing: the policy `ferry serve` sends with them.
 */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The console's files and the paths `ferry serve` serves them at (see `http/console.rs`). */
export const CONSOLE_FILES = [
  { path: "/console", file: "index.html", type: "text/html; charset=utf-8" },
  { path: "/console/", file: "index.html", type: "text/html; charset=utf-8" },
  { path: "/console/console.js", file: "console.js", type: "text/javascript; charset=utf-8" },
  { path: "/console/console.css", file: "console.css", type: "text/css; charset=utf-8" },
];

/** A fresh server (see `test-support/ferry.mjs`), spoken to over its API too. */
export class Server extends FerryServer {
  /** A request to the API as `token`'s user: the answer's status and JSON. */
  async api(method, path, { token = null, body } = {}) {
    const headers = {};
    if (token !== null) headers.authorization = `Bearer ${token}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const answer = await fetch(`${this.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await answer.text();
    return { status: answer.status, json: text === "" ? null : JSON.parse(text) };
  }
}

/**
 * Serves the console's files from `directory` at the paths `ferry serve` serves them (read
 * again for every request, with the same headers and a content security policy), and passes every other request to
 * `upstream`: the console as the binary will serve it once rebuilt from these files.
 */
export class ConsoleFiles {
  static async start(directory, upstream) {
    const files = new Map(CONSOLE_FILES.map((entry) => [entry.path, entry]));
    const server = http.createServer((request, response) => {
      const path = new URL(request.url, "http://console.invalid").pathname;
      const entry = files.get(path);
      if (entry !== undefined && (request.method === "GET" || request.method === "HEAD")) {
        const body = readFileSync(join(directory, entry.file));
        response.writeHead(200, {
          "content-type": entry.type,
          "content-length": body.length,
          "x-frame-options": "DENY",
          "cache-control": "no-cache",
          "content-security-policy": CONTENT_SECURITY_POLICY,
        });
        response.end(request.method === "HEAD" ? undefined : body);
        return;
      }
      const target = new URL(request.url, upstream);
      const forward = http.request(
        target,
        { method: request.method, headers: { ...request.headers, host: target.host } },
        (answer) => {
          response.writeHead(answer.statusCode ?? 502, answer.statusMessage, answer.headers);
          answer.pipe(response);
        },
      );
      forward.on("error", (error) => {
        if (!response.headersSent) response.writeHead(502, { "content-type": "application/json" });
        response.end(
          JSON.stringify({
            code: "bad-gateway",
            message: `the test's proxy could not reach ferry serve: ${error.message}`,
            details: null,
          }),
        );
      });
      request.pipe(forward);
    });
    await new Promise((resolvePromise) => server.listen(0, "127.0.0.1", resolvePromise));
    const { port } = server.address();
    return new ConsoleFiles(server, `http://127.0.0.1:${port}`);
  }

  constructor(server, url) {
    this.server = server;
    this.url = url;
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise((resolvePromise) => this.server.close(resolvePromise));
  }
}

/** A device database driven by `ferry device --json`, signed in as one user. */
export class Device {
  constructor(directory, user, password) {
    this.db = join(directory, `${user}.db`);
    this.user = user;
    this.password = password;
  }

  /** Runs a device command; gives its JSON document. */
  async run(...args) {
    const printed = await ferry(["device", "--db", this.db, "--json", ...args], {
      env: { FERRY_PASSWORD: this.password },
    });
    return JSON.parse(printed);
  }

  login(server) {
    return this.run("login", "--server", server, "--user", this.user);
  }
}

/**
 * Headless Chromium with a fresh profile and one page; every console message of type error
 * and every page error is collected, and a test takes those it caused on purpose with
 * `expectErrors`, so `unexpectedErrors` must end empty.
 */
export class Browser {
  static async launch(directory) {
    const profile = join(directory, "chromium-profile");
    mkdirSync(profile, { recursive: true });
    const context = await chromium.launchPersistentContext(profile, CHROMIUM_CONTEXT);
    return new Browser(context);
  }

  constructor(context) {
    this.context = context;
    this.errors = [];
    this.page = context.pages()[0];
    this.page.on("console", (message) => {
      if (message.type() === "error") this.errors.push({ text: message.text(), url: message.location().url ?? "" });
    });
    this.page.on("pageerror", (error) => this.errors.push({ text: `page error: ${error.message}`, url: "" }));
  }

  /**
   * Runs `step`, which makes the browser log `count` errors matching `pattern` (a request
   * the server refuses shows in Chromium's console as a failed resource); waits for them and
   * takes them from the collected errors. Fails if they do not come.
   */
  async expectErrors(pattern, count, step) {
    const before = this.errors.length;
    const result = await step();
    const deadline = Date.now() + MESSAGE_WAIT_MS_MAX;
    const matching = () => this.errors.slice(before).filter((error) => pattern.test(`${error.text} ${error.url}`));
    while (matching().length < count && Date.now() < deadline) await new Promise((wake) => setTimeout(wake, 50));
    const found = matching();
    if (found.length !== count) {
      throw new Error(
        `expected ${count} browser errors matching ${pattern}, saw ${found.length}: ${JSON.stringify(this.errors.slice(before))}`,
      );
    }
    this.errors = this.errors.filter((error) => !found.includes(error));
    return result;
  }

  get unexpectedErrors() {
    return this.errors.map((error) => `${error.text}${error.url ? ` (${error.url})` : ""}`);
  }

  async close() {
    await this.context.close();
  }
}

/** The pixels of a PNG (through `pngjs`): enough to tell a screenshot that shows something from a blank one. */
export function decodePng(buffer) {
  const png = PNG.sync.read(buffer);
  return { width: png.width, height: png.height, channels: 4, pixels: png.data };
}
