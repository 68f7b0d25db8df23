// What the Node test suites of the repository (the field app's and the web console's browser
// tests, the browser benchmark's driver) share: the `ferry` binary and the sample model, a
// real `ferry serve` on a fresh SQLite database in a temporary directory, and how Debian's
// Chromium is started. Only Node's own modules: each package brings its own `playwright-core`.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The model the tests' servers load. */
export const MODEL_FILE = join(ROOT, "crates/ferry-model/src/samples/field_service.toml");
/** The `ferry` binary: $FERRY_BIN, or the workspace's debug build. */
export const FERRY_BIN = process.env.FERRY_BIN ?? join(ROOT, "target/debug/ferry");
/** The machine's Chromium (never a downloaded one): $CHROMIUM, or Debian's. */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/**
 * Chromium's flags here: no sandbox (the tests may run as root), and none of its own network
 * traffic, which this machine's closed network would refuse many times a start.
 */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * The options of a persistent Chromium context the browser tests open: the machine's Chromium,
 * headless, with `CHROMIUM_ARGS`, a 1280×800 window, an English locale and UTC, so screenshots
 * and dates come out the same on every machine.
 */
export const CHROMIUM_CONTEXT = {
  executablePath: CHROMIUM,
  headless: true,
  args: CHROMIUM_ARGS,
  viewport: { width: 1280, height: 800 },
  locale: "en-GB",
  timezoneId: "UTC",
};

/** How long a server may take to say where it listens, in milliseconds. */
const SERVER_START_MS_MAX = 20_000;

/** A temporary directory; `cleanup` removes it. */
export function temporaryDirectory(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Removes a directory, ignoring one already gone. */
export function cleanup(directory) {
  rmSync(directory, { recursive: true, force: true });
}

/**
 * Runs `ferry` to completion with `input` on standard input and `env` added to the
 * environment; its standard output, or an error with its standard error when it fails.
 */
export function ferry(args, { input = "", env = {} } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(FERRY_BIN, args, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => (stdout += chunk));
    child.stderr.on("data", (chunk) => (stderr += chunk));
    child.on("error", reject);
    child.on("close", (code) => {
      if (code === 0) resolve(stdout);
      else reject(new Error(`ferry ${args.join(" ")} exited with ${code}: ${stderr.trim() || stdout.trim()}`));
    });
    child.stdin.end(input);
  });
}

/** A fresh server: its database in `directory`, its users, and the running `ferry serve`. */
export class FerryServer {
  constructor(directory) {
    this.directory = directory;
    this.database = `sqlite:${join(directory, "ferry.db")}`;
    this.process = null;
    this.url = null;
    this.output = "";
  }

  /** Adds a user with one role; gives their id, as `ferry user add` prints it. */
  async addUser(name, role, password) {
    const printed = await ferry(
      ["user", "add", name, "--role", role, "--password-stdin", "--model", MODEL_FILE, "--database", this.database],
      { input: `${password}\n` },
    );
    const match = /added with id (\S+)/.exec(printed);
    if (match === null) throw new Error(`ferry user add printed no id: ${printed}`);
    return match[1];
  }

  /** Starts `ferry serve` on a free loopback port, with `options` added; gives its address. */
  async start(options = []) {
    const child = spawn(
      FERRY_BIN,
      ["serve", "--model", MODEL_FILE, "--database", this.database, "--files", join(this.directory, "files")]
        .concat(["--listen", "127.0.0.1:0"], options),
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    this.process = child;
    this.url = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`ferry serve said nothing of where it listens within ${SERVER_START_MS_MAX} ms: ${this.output}`)),
        SERVER_START_MS_MAX,
      );
      const read = (chunk) => {
        this.output += chunk;
        const match = /serving model version \S+ on (http:\/\/127\.0\.0\.1:\d+)/.exec(this.output);
        if (match !== null) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout.on("data", read);
      child.stderr.on("data", read);
      child.on("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`ferry serve exited with ${code}: ${this.output}`));
      });
    });
    return this.url;
  }

  /** Signs in over the API directly (as a device would); gives the access token. */
  async signIn(user, password) {
    const answer = await fetch(`${this.url}/v1/sign-in`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user, password }),
    });
    if (!answer.ok) throw new Error(`sign-in of ${user} answered ${answer.status}: ${await answer.text()}`);
    return (await answer.json()).token;
  }

  /** Stops the server (SIGTERM), and waits for it to exit. */
  async stop() {
    const child = this.process;
    if (child === null || child.exitCode !== null) return;
    await new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill("SIGTERM");
    });
  }
}

/**
 * How many distinct colours a decoded image has (`pixels`, `channels` per pixel; counting
 * stops at `enough`): a screenshot of one colour or two is a blank page.
 */
export function colourCount({ pixels, channels }, enough = 64) {
  const seen = new Set();
  for (let i = 0; i < pixels.length; i += channels) {
    seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    if (seen.size >= enough) break;
  }
  return seen.size;
}
