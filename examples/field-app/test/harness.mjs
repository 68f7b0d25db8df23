// What the browser tests stand on: a real `ferry serve` serving the built app beside its API on
// a fresh SQLite database (the repository's `test-support/ferry.mjs`), headless Chromium (the
// machine's own, driven by playwright-core) in a fresh profile per device, and checks of
// screenshots.

import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { PNG } from "pngjs";

import { CHROMIUM_CONTEXT, FerryServer } from "../../../test-support/ferry.mjs";

export { MODEL_FILE, cleanup, colourCount, temporaryDirectory } from "../../../test-support/ferry.mjs";

/** The app's folder. */
export const APP_DIR = fileURLToPath(new URL("../", import.meta.url));
/** The built app the server serves. */
export const DIST_DIR = join(APP_DIR, "dist");
/** Where screenshots go (gitignored). */
export const RESULTS_DIR = join(APP_DIR, "test-results");

/** A fresh server serving the built app at `/` beside its API. */
export class Server extends FerryServer {
  start() {
    return super.start(["--app", DIST_DIR]);
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
    const context = await chromium.launchPersistentContext(profile, { ...CHROMIUM_CONTEXT, serviceWorkers: "allow" });
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

/** The pixels of a PNG (through `pngjs`): enough to tell a screenshot that shows something from a blank one. */
export function decodePng(buffer) {
  const png = PNG.sync.read(buffer);
  return { width: png.width, height: png.height, channels: 4, pixels: png.data };
}


/** A small PNG made here (a gradient with a bar), standing for a technician's photo. */
export function makePhoto(width = 48, height = 32) {
  const png = new PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bar = y > height / 3 && y < (2 * height) / 3;
      const at = (y * width + x) * 4;
      png.data[at] = bar ? 240 : Math.round((x / width) * 255);
      png.data[at + 1] = bar ? 200 : Math.round((y / height) * 255);
      png.data[at + 2] = bar ? 40 : 160;
      png.data[at + 3] = 255;
    }
  }
  return PNG.sync.write(png);
}
