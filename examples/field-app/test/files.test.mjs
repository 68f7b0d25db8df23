// Removing file contents nothing refers to (`Database.collectFiles`) on OPFS storage, in a
// dedicated Worker of headless Chromium: the file contents check page (files-check.html, served
// by a real `ferry serve --app dist`) runs each check in its worker and gives what it saw, and
// the tests check the counts, the files in OPFS and the bytes read back against the contents
// they made.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, test } from "node:test";

import { Device, Server, cleanup, temporaryDirectory } from "./harness.mjs";

/** How long the page may take to be ready, in milliseconds. */
const READY_MS = 20_000;

let directory;
let server;
let device;
let page;

before(async () => {
  directory = temporaryDirectory("ferry-field-files-");
  server = new Server(directory);
  await server.start();
  device = await Device.launch("files", directory);
  page = await device.open(`${server.url}/files-check.html`);
  await page.waitForFunction(() => typeof window.ferryFilesCheck?.collect === "function", null, { timeout: READY_MS });
});

after(async () => {
  await device?.close().catch(() => {});
  await server?.stop();
  if (directory) cleanup(directory);
});

function sha256(bytes) {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Where the OPFS store keeps a content, under its database's folder. */
function contentPath(hash) {
  return `${hash.slice(0, 2)}/${hash}`;
}

test("on OPFS, collectFiles removes the content nothing refers to and keeps the referenced one byte for byte", async () => {
  const kept = randomBytes(96 * 1024 + 7);
  const dropped = randomBytes(20 * 1024 + 3);
  const keptHash = sha256(kept);
  const droppedHash = sha256(dropped);

  const result = await page.evaluate(
    ([keptBytes, droppedBytes]) => window.ferryFilesCheck.collect(keptBytes, droppedBytes),
    [Array.from(kept), Array.from(dropped)],
  );

  assert.equal(result.keptHash, keptHash, "attachFile names the content by its SHA-256");
  assert.equal(result.droppedHash, droppedHash);
  assert.deepEqual(result.afterCommit, [contentPath(keptHash), contentPath(droppedHash)].sort(), "both contents are files in OPFS");
  assert.ok(result.droppedBeforeDelete !== null, "the dropped content read back before its photo went");
  assert.ok(Buffer.from(result.droppedBeforeDelete).equals(dropped));

  assert.equal(result.deletion, "removed", "a photo never uploaded leaves the device");
  assert.equal(result.photosAfterDelete.length, 1);

  assert.equal(result.removedWithinGrace, 0, "within a day's grace nothing goes");
  assert.deepEqual(result.afterGrace, result.afterCommit, "and every file stays");

  assert.equal(result.removed, 1, "without a grace period the unreferenced content goes");
  assert.deepEqual(result.afterCollect, [contentPath(keptHash)], "only the referenced content is left in OPFS");
  assert.equal(result.droppedRead, null, "the removed content can no longer be read");
  assert.ok(result.keptRead !== null, "the referenced content is still read");
  assert.equal(result.keptRead.length, kept.length);
  assert.ok(Buffer.from(result.keptRead).equals(kept), "the referenced content reads back byte for byte");

  assert.ok(result.keptReadAfterReopen !== null, "the referenced content is read after the database is opened again");
  assert.ok(Buffer.from(result.keptReadAfterReopen).equals(kept));
  assert.equal(result.removedAfterReopen, 0, "nothing is left to remove");
  assert.deepEqual(result.afterReopen, [contentPath(keptHash)]);

  assert.deepEqual(device.errors, [], "no console or page errors");
});

test("on OPFS, a content whose file is open is not removed, and collectFiles says so instead of counting it", async () => {
  const content = randomBytes(8 * 1024 + 1);
  const hash = sha256(content);

  const result = await page.evaluate((bytes) => window.ferryFilesCheck.locked(bytes), Array.from(content));

  assert.equal(result.hash, hash);
  assert.equal(result.whileOpen.kind, "storage", `collectFiles gave ${JSON.stringify(result.whileOpen)}`);
  assert.match(result.whileOpen.message, new RegExp(`could not remove the content ${hash}`));
  assert.deepEqual(result.afterOpen, [contentPath(hash)], "the open file stays");
  assert.equal(result.removedAfterClose, 1, "once closed, it goes");
  assert.deepEqual(result.afterClose, []);

  assert.deepEqual(device.errors, [], "no console or page errors");
});
