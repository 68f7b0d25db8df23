// What the browser tests stand on: a real `ferry serve` serving the built app beside its API on
// a fresh SQLite database, users added with `ferry user add`, headless Chromium (the machine's
// own, driven by playwright-core) in a fresh profile per device, and checks of screenshots.

import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { deflateSync as deflate, inflateSync } from "node:zlib";
import { chromium } from "playwright-core";

const here = new URL("./", import.meta.url);
/** The app's folder. */
export const APP_DIR = fileURLToPath(new URL("../", here));
/** The built app the server serves. */
export const DIST_DIR = join(APP_DIR, "dist");
/** Where screenshots go (gitignored). */
export const RESULTS_DIR = join(APP_DIR, "test-results");
/** The model the server loads: the same file the app bundles. */
export const MODEL_FILE = fileURLToPath(new URL("../../../crates/ferry-model/src/samples/field_service.toml", here));
/** The `ferry` binary: $FERRY_BIN, or the workspace's debug build. */
export const FERRY_BIN = process.env.FERRY_BIN ?? fileURLToPath(new URL("../../../target/debug/ferry", here));
/** The machine's Chromium (never a downloaded one). */
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

/** How long the server may take to say where it listens, in milliseconds. */
const SERVER_START_MS_MAX = 20_000;

/** A temporary directory, removed by `cleanup`. */
export function temporaryDirectory(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Runs `ferry` to completion with `input` on standard input; its standard output, or an error
 * with its standard error when it fails.
 */
export function ferry(args, input = "") {
  return new Promise((resolve, reject) => {
    const child = spawn(FERRY_BIN, args, { stdio: ["pipe", "pipe", "pipe"] });
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

/** A fresh server: its database, users, and the running `ferry serve` with the app. */
export class Server {
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
      `${password}\n`,
    );
    const match = /added with id (\S+)/.exec(printed);
    if (match === null) throw new Error(`ferry user add printed no id: ${printed}`);
    return match[1];
  }

  /** Starts `ferry serve` on a free loopback port, serving the built app at `/`. */
  async start() {
    const child = spawn(
      FERRY_BIN,
      [
        "serve",
        "--model",
        MODEL_FILE,
        "--database",
        this.database,
        "--files",
        join(this.directory, "files"),
        "--listen",
        "127.0.0.1:0",
        "--app",
        DIST_DIR,
      ],
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

  /** Signs in over the API directly (as a device would), for checks the app does not show. */
  async signIn(user, password) {
    const answer = await fetch(`${this.url}/v1/sign-in`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ user, password }),
    });
    if (!answer.ok) throw new Error(`sign-in of ${user} answered ${answer.status}: ${await answer.text()}`);
    return (await answer.json()).token;
  }

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
 * A device: headless Chromium with a profile of its own (so OPFS, localStorage and the
 * service worker's cache survive reloads), one page, and every console error and page error
 * collected.
 */
export class Device {
  static async launch(name, directory) {
    const profile = join(directory, `profile-${name}`);
    mkdirSync(profile, { recursive: true });
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1280, height: 800 },
      locale: "en-GB",
      timezoneId: "UTC",
      serviceWorkers: "allow",
    });
    return new Device(name, context);
  }

  constructor(name, context) {
    this.name = name;
    this.context = context;
    this.errors = [];
    this.page = context.pages()[0] ?? null;
    context.on("page", (page) => this.watch(page));
    for (const page of context.pages()) this.watch(page);
  }

  watch(page) {
    page.on("console", (message) => {
      if (message.type() === "error") this.errors.push(`${this.name} console: ${message.text()}`);
    });
    page.on("pageerror", (error) => this.errors.push(`${this.name} page error: ${error.message}`));
  }

  async open(url) {
    this.page ??= await this.context.newPage();
    await this.page.goto(url);
    return this.page;
  }

  async close() {
    await this.context.close();
  }
}

/** Removes a directory, ignoring one already gone. */
export function cleanup(directory) {
  rmSync(directory, { recursive: true, force: true });
}

/**
 * The pixels of a PNG as Chromium writes them (8-bit RGB or RGBA, not interlaced): enough
 * to tell a screenshot that shows something from a blank one.
 */
export function decodePng(buffer) {
  const signature = "89504e470d0a1a0a";
  if (buffer.subarray(0, 8).toString("hex") !== signature) throw new Error("not a PNG");
  let offset = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const data = [];
  while (offset < buffer.length) {
    const length = buffer.readUInt32BE(offset);
    const type = buffer.subarray(offset + 4, offset + 8).toString("latin1");
    const body = buffer.subarray(offset + 8, offset + 8 + length);
    if (type === "IHDR") {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8];
      const colour = body[9];
      const interlace = body[12];
      if (depth !== 8 || interlace !== 0 || (colour !== 2 && colour !== 6)) {
        throw new Error(`a PNG of depth ${depth}, colour type ${colour}, interlace ${interlace} is not handled`);
      }
      channels = colour === 6 ? 4 : 3;
    } else if (type === "IDAT") {
      data.push(body);
    } else if (type === "IEND") {
      break;
    }
    offset += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * channels;
  const pixels = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = pixels.subarray(y * stride, (y + 1) * stride);
    const above = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let x = 0; x < stride; x++) {
      const left = x >= channels ? out[x - channels] : 0;
      const up = above[x];
      const upLeft = x >= channels ? above[x - channels] : 0;
      let predicted = 0;
      if (filter === 1) predicted = left;
      else if (filter === 2) predicted = up;
      else if (filter === 3) predicted = (left + up) >> 1;
      else if (filter === 4) {
        const p = left + up - upLeft;
        const pa = Math.abs(p - left);
        const pb = Math.abs(p - up);
        const pc = Math.abs(p - upLeft);
        predicted = pa <= pb && pa <= pc ? left : pb <= pc ? up : upLeft;
      } else if (filter !== 0) throw new Error(`PNG filter ${filter} is unknown`);
      out[x] = (line[x] + predicted) & 0xff;
    }
  }
  return { width, height, channels, pixels };
}

/** How many distinct colours a decoded PNG has (counting stops at `enough`). */
export function colourCount({ pixels, channels }, enough = 64) {
  const seen = new Set();
  for (let i = 0; i < pixels.length; i += channels) {
    seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    if (seen.size >= enough) break;
  }
  return seen.size;
}

/** A small PNG made here (a gradient with a bar), standing for a technician's photo. */
export function makePhoto(width = 48, height = 32) {
  const rows = [];
  for (let y = 0; y < height; y++) {
    const row = Buffer.alloc(1 + width * 3);
    for (let x = 0; x < width; x++) {
      const bar = y > height / 3 && y < (2 * height) / 3;
      row[1 + x * 3] = bar ? 240 : Math.round((x / width) * 255);
      row[2 + x * 3] = bar ? 200 : Math.round((y / height) * 255);
      row[3 + x * 3] = bar ? 40 : 160;
    }
    rows.push(row);
  }
  const chunk = (type, body) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(body.length);
    const typed = Buffer.concat([Buffer.from(type, "latin1"), body]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(typed));
    return Buffer.concat([length, typed, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8;
  header[9] = 2;
  return Buffer.concat([
    Buffer.from("89504e470d0a1a0a", "hex"),
    chunk("IHDR", header),
    chunk("IDAT", deflate(Buffer.concat(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function crc32(bytes) {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
