// The field app in headless Chromium against a real server: a planner and a technician on
// two devices, offline work that survives a reload, sync and live mode, a rejected change, and
// a screenshot of every screen at desktop and phone sizes, with no console or page error.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  Device,
  RESULTS_DIR,
  Server,
  cleanup,
  colourCount,
  decodePng,
  makePhoto,
  temporaryDirectory,
} from "./harness.mjs";

/** How long a step may take to show its result, in milliseconds. */
const STEP_MS = 20_000;
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };

const PLANNER = { name: "pat", password: "pat's password" };
const TECHNICIAN = { name: "alice", password: "alice's password" };

let directory;
let server;
let aliceId;
const devices = [];

before(async () => {
  directory = temporaryDirectory("ferry-field-app-");
  mkdirSync(RESULTS_DIR, { recursive: true });
  server = new Server(directory);
  await server.addUser(PLANNER.name, "Planner", PLANNER.password);
  aliceId = await server.addUser(TECHNICIAN.name, "Technician", TECHNICIAN.password);
  await server.start();
});

after(async () => {
  for (const device of devices) await device.close().catch(() => {});
  await server?.stop();
  if (directory) cleanup(directory);
});

/**
 * Screenshots the current screen at desktop and phone sizes into test-results/, and checks
 * each: it shows something (many colours, not a blank page), its main heading is visible,
 * nothing is wider than the window, and every visible form control has a label.
 */
async function screenshot(page, name, heading) {
  for (const [size, viewport] of [
    ["desktop", DESKTOP],
    ["phone", PHONE],
  ]) {
    await page.setViewportSize(viewport);
    const title = page.locator("main h1", { hasText: heading });
    await title.waitFor({ state: "visible", timeout: STEP_MS });
    assert.ok(await title.isVisible(), `${name} (${size}): the main heading is visible`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} (${size}): the page is ${overflow}px wider than the window`);
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll("input, select, textarea"))
        .filter((control) => control.offsetParent !== null)
        .filter((control) => control.labels.length === 0 && !control.getAttribute("aria-label"))
        .map((control) => control.id || control.name || control.outerHTML),
    );
    assert.deepEqual(unlabelled, [], `${name} (${size}): form controls without a label`);
    const png = await page.screenshot({ fullPage: true });
    writeFileSync(join(RESULTS_DIR, `${name}-${size}.png`), png);
    const colours = colourCount(decodePng(png));
    assert.ok(colours >= 16, `${name} (${size}): the screenshot has only ${colours} colours`);
  }
  await page.setViewportSize(DESKTOP);
}

/** The pending changes the status bar shows. */
async function pending(page) {
  return Number(await page.locator("#pending-count").getAttribute("data-count"));
}

async function waitForPending(page, count) {
  await page.waitForFunction(
    (expected) => document.querySelector("#pending-count")?.getAttribute("data-count") === String(expected),
    count,
    { timeout: STEP_MS },
  );
}

/** Presses Sync and waits for its report in the status line. */
async function sync(page) {
  await page.locator("#sync-button").waitFor({ state: "visible" });
  await page.waitForFunction(() => !document.querySelector("#sync-button")?.disabled, null, { timeout: STEP_MS });
  await page.locator("#sync-message").evaluate((line) => (line.textContent = ""));
  await page.locator("#sync-button").click();
  await page.waitForFunction(
    () => /^(Synced|Sync failed)/.test(document.querySelector("#sync-message")?.textContent ?? ""),
    null,
    { timeout: STEP_MS },
  );
  const message = await page.locator("#sync-message").innerText();
  assert.match(message, /^Synced/, `the sync failed: ${message}`);
  return message;
}

/** Signs in; the view (planner or technician) follows the user's roles. */
async function signIn(page, user) {
  await page.locator("main h1", { hasText: "Sign in" }).waitFor({ timeout: STEP_MS });
  await page.getByLabel("User name").fill(user.name);
  await page.getByLabel("Password").fill(user.password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/** Waits until the worker has said the first sync after sign-in is done. */
async function firstSync(page) {
  await page.waitForFunction(
    () => /^(Synced|Sync failed)/.test(document.querySelector("#sync-message")?.textContent ?? ""),
    null,
    { timeout: STEP_MS },
  );
  assert.match(await page.locator("#sync-message").innerText(), /^Synced/);
}

/** The row of a work order in a list, by its title. */
function row(page, title) {
  return page.locator("table.orders tbody tr", { hasText: title });
}

/** The paths of everything in the page's caches. */
function cachedPaths(page) {
  return page.evaluate(async () => {
    const paths = [];
    for (const name of await caches.keys()) {
      const cache = await caches.open(name);
      for (const request of await cache.keys()) paths.push(new URL(request.url).pathname);
    }
    return paths;
  });
}

test("the app is installable: its manifest names it, its start and its icons", async () => {
  const answer = await fetch(`${server.url}/manifest.webmanifest`);
  assert.equal(answer.status, 200);
  assert.match(answer.headers.get("content-type") ?? "", /manifest\+json|json/);
  const manifest = await answer.json();
  assert.equal(manifest.name, "Ferry Field");
  assert.equal(manifest.display, "standalone");
  assert.equal(new URL(manifest.start_url, `${server.url}/manifest.webmanifest`).href, `${server.url}/`);
  const sizes = manifest.icons.map((icon) => icon.sizes);
  assert.ok(sizes.includes("192x192") && sizes.includes("512x512"), `icon sizes: ${sizes}`);
  for (const icon of manifest.icons) {
    const image = await fetch(new URL(icon.src, `${server.url}/manifest.webmanifest`));
    assert.equal(image.status, 200, icon.src);
    assert.equal(image.headers.get("content-type"), icon.type, icon.src);
    if (icon.type === "image/png") {
      const png = decodePng(Buffer.from(await image.arrayBuffer()));
      assert.equal(`${png.width}x${png.height}`, icon.sizes);
    }
  }
  const worker = await fetch(`${server.url}/sw.js`);
  assert.equal(worker.status, 200);
  assert.match(await worker.text(), /const SHELL = \[/);
});

test("a planner and a technician work through a work order, offline and live", async () => {
  const photo = makePhoto();

  // 1. The planner signs in, adds a site, creates a work order for alice, and syncs.
  const a = await Device.launch("planner", directory);
  devices.push(a);
  const pageA = await a.open(server.url);
  await screenshot(pageA, "sign-in", /Sign in/);
  await signIn(pageA, PLANNER);
  await pageA.locator("main h1", { hasText: "Work orders" }).waitFor({ timeout: STEP_MS });
  await firstSync(pageA);

  await pageA.getByLabel("Site name").fill("North depot");
  await pageA.getByLabel("Address").fill("1 Harbour Road");
  await pageA.getByRole("button", { name: "Add site" }).click();
  await pageA.locator(".sites li", { hasText: "North depot" }).waitFor({ timeout: STEP_MS });

  await pageA.getByRole("link", { name: "New work order" }).first().click();
  await pageA.locator("main h1", { hasText: "New work order" }).waitFor();
  await pageA.getByLabel("Number").fill("1001");
  await pageA.getByLabel("Title").fill("Replace the pump");
  await pageA.getByLabel("Priority").selectOption("2");
  await pageA.getByLabel("Due").fill("2031-05-04T09:30");
  await pageA.getByLabel("Site").selectOption({ label: "North depot" });
  await pageA.getByLabel(/Assigned to/).fill(aliceId);
  await screenshot(pageA, "planner-create", /New work order/);
  await pageA.getByRole("button", { name: "Create work order" }).click();
  await row(pageA, "Replace the pump").waitFor({ timeout: STEP_MS });
  // Live mode may upload the new objects by itself right after the commit; Sync is pressed
  // anyway, and the count ends at zero either way.
  await sync(pageA);
  await waitForPending(pageA, 0);
  assert.match(await row(pageA, "Replace the pump").innerText(), /Open/);
  await screenshot(pageA, "planner-list", /Work orders/);

  // 2. The technician signs in with the keyboard alone (a wrong password first), syncs with
  // its progress on screen (the server's answers slowed down so it can be seen), and sees the
  // work order.
  const b = await Device.launch("technician", directory);
  devices.push(b);
  const pageB = await b.open(server.url);
  await pageB.locator("main h1", { hasText: "Sign in" }).waitFor({ timeout: STEP_MS });
  await pageB.getByLabel("User name").focus();
  await pageB.keyboard.type(TECHNICIAN.name);
  await pageB.keyboard.press("Tab");
  await pageB.keyboard.type("not her password");
  await pageB.keyboard.press("Enter");
  await pageB.locator("main form .error", { hasText: "refused this user name and password" }).waitFor({ timeout: STEP_MS });
  const slowDownloads = async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 250));
    await route.continue();
  };
  await b.context.route("**/v1/download/**", slowDownloads);
  await pageB.getByLabel("Password").fill("");
  await pageB.getByLabel("Password").focus();
  await pageB.keyboard.type(TECHNICIAN.password);
  await pageB.keyboard.press("Enter");
  await pageB.locator("main h1", { hasText: "My work orders" }).waitFor({ timeout: STEP_MS });
  await pageB.locator("#sync-progress", { hasText: /Downloading [\w ]+: \d+\/\d+ objects/ }).waitFor({ timeout: STEP_MS });
  assert.equal(await pageB.locator("#sync-progress progress").first().isVisible(), true);
  await firstSync(pageB);
  await b.context.unrouteAll({ behavior: "wait" });
  await pageB.locator("#sync-progress").waitFor({ state: "hidden" });
  const orderRow = row(pageB, "Replace the pump");
  await orderRow.filter({ hasText: "North depot" }).waitFor({ timeout: STEP_MS });
  assert.match(await orderRow.innerText(), /1001/);
  assert.match(await orderRow.innerText(), /Open/);
  // The service worker holds the app shell before the network goes away: the page, the
  // worker, both WebAssembly modules.
  await pageB.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
  const shell = await cachedPaths(pageB);
  for (const part of [/\/index\.html$/, /\/assets\/worker-[\w-]+\.js$/, /\/assets\/ferry_wasm_bg-[\w-]+\.wasm$/, /\/assets\/sqlite3-[\w-]+\.wasm$/]) {
    assert.ok(shell.some((path) => part.test(path)), `the app shell lacks ${part}: ${shell.join(", ")}`);
  }
  await screenshot(pageB, "technician-list", /My work orders/);

  // 3. Offline: status and notes, a visit with a photo, feedback begun but not sent.
  await b.context.setOffline(true);
  await pageB.locator("#network-state", { hasText: "Offline" }).waitFor();
  await orderRow.getByRole("link", { name: "Replace the pump" }).click();
  await pageB.locator("main h1", { hasText: "#1001 Replace the pump" }).waitFor({ timeout: STEP_MS });
  await pageB.getByLabel("Status").selectOption("InProgress");
  await pageB.getByLabel("Notes").fill("The bearing is worn; the seal is replaced.");
  await pageB.getByRole("button", { name: "Save progress" }).click();
  await waitForPending(pageB, 1);
  await screenshot(pageB, "detail", /#1001 Replace the pump/);

  await pageB.getByRole("link", { name: "Record a visit" }).click();
  await pageB.locator("main h1", { hasText: "Record a visit" }).waitFor();
  await pageB.getByLabel("Started").fill("2031-05-04T10:00");
  await pageB.getByLabel("Ended").fill("2031-05-04T11:15");
  await pageB.getByLabel("Summary").fill("Seal replaced, pump runs quietly.");
  await pageB.getByLabel("Photo", { exact: true }).setInputFiles({ name: "pump.png", mimeType: "image/png", buffer: photo });
  await pageB.getByLabel("Caption").fill("The new seal");
  await pageB.getByRole("button", { name: "Save visit" }).click();
  await pageB.locator("main h1", { hasText: /^Visit / }).waitFor({ timeout: STEP_MS });
  const image = pageB.locator(".gallery img");
  await image.waitFor({ timeout: STEP_MS });
  await pageB.waitForFunction(() => (document.querySelector(".gallery img")?.naturalWidth ?? 0) === 48, null, {
    timeout: STEP_MS,
  });
  const photoId = await pageB.locator(".gallery figure").getAttribute("data-id");
  assert.ok(photoId, "the photo's figure names its object");
  await waitForPending(pageB, 3);
  await screenshot(pageB, "visit", /^Visit /);

  await pageB.getByRole("link", { name: /Replace the pump/ }).click();
  await pageB.locator("main h1", { hasText: "#1001 Replace the pump" }).waitFor();
  await pageB.locator(".visits li", { hasText: "Seal replaced" }).waitFor({ timeout: STEP_MS });
  const draft = "The customer asks for a check in six months.";
  await pageB.locator("#feedback-message").fill(draft);
  await pageB.locator("#feedback-rating").selectOption("4");

  const reloaded = await pageB.reload();
  assert.ok(reloaded?.fromServiceWorker(), "the offline reload was answered by the service worker");
  await pageB.locator("main h1", { hasText: "#1001 Replace the pump" }).waitFor({ timeout: STEP_MS });
  await pageB.locator("#network-state", { hasText: "Offline" }).waitFor();
  assert.equal(await pending(pageB), 3, "the committed changes are still waiting for upload");
  assert.equal(await pageB.locator("#feedback-message").inputValue(), draft);
  assert.equal(await pageB.locator("#feedback-rating").inputValue(), "4");
  await pageB.locator("#feedback-form .draft-note").waitFor();
  assert.equal(await pageB.getByLabel("Status").inputValue(), "InProgress");
  assert.equal(await pageB.getByLabel("Notes").inputValue(), "The bearing is worn; the seal is replaced.");

  // 4. Online again: the feedback goes too, everything is uploaded, and the planner's device
  // learns it by live mode, with no sync asked for there.
  await b.context.setOffline(false);
  await pageB.locator("#network-state", { hasText: /^Online/ }).waitFor({ timeout: STEP_MS });
  await sync(pageB);
  await waitForPending(pageB, 0);
  await pageB.getByRole("button", { name: "Send feedback" }).click();
  await pageB.waitForFunction(() => document.querySelector("#feedback-message")?.value === "", null, { timeout: STEP_MS });
  await sync(pageB);
  await waitForPending(pageB, 0);

  await pageA.locator("#network-state", { hasText: "Online · live" }).waitFor({ timeout: STEP_MS });
  await row(pageA, "Replace the pump").locator(".badge", { hasText: "In progress" }).waitFor({ timeout: STEP_MS });
  await row(pageA, "Replace the pump").getByRole("link").click();
  await pageA.locator("main h1", { hasText: "#1001 Replace the pump" }).waitFor();
  assert.equal(await pageA.getByLabel("Notes").inputValue(), "The bearing is worn; the seal is replaced.");
  await pageA.locator("li", { hasText: "Seal replaced, pump runs quietly." }).waitFor({ timeout: STEP_MS });

  // The photo's content reached the server, and the planner may read it.
  const token = await server.signIn(PLANNER.name, PLANNER.password);
  const content = await fetch(`${server.url}/v1/files/Field.Photo/${photoId}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(content.status, 200);
  assert.deepEqual(Buffer.from(await content.arrayBuffer()), photo);

  // A planner's new work order reaches the technician's list without a tap.
  await pageA.getByRole("link", { name: "New work order" }).first().click();
  await pageA.locator("main h1", { hasText: "New work order" }).waitFor();
  await pageA.getByLabel("Number").fill("1002");
  await pageA.getByLabel("Title").fill("Inspect the valves");
  await pageA.getByLabel(/Assigned to/).fill(aliceId);
  await pageA.getByRole("button", { name: "Create work order" }).click();
  await row(pageA, "Inspect the valves").waitFor({ timeout: STEP_MS });
  await waitForPending(pageA, 0);
  await pageB.locator("#nav").getByRole("link", { name: "My work orders" }).click();
  await row(pageB, "Inspect the valves").waitFor({ timeout: STEP_MS });

  // 5. A change the rules reject: a second work order numbered 1001, made offline and synced.
  await a.context.setOffline(true);
  await pageA.locator("#network-state", { hasText: "Offline" }).waitFor();
  await pageA.getByRole("link", { name: "New work order" }).first().click();
  await pageA.locator("main h1", { hasText: "New work order" }).waitFor();
  await pageA.getByLabel("Number").fill("1001");
  await pageA.getByLabel("Title").fill("A duplicate number");
  await pageA.getByRole("button", { name: "Create work order" }).click();
  await row(pageA, "A duplicate number").waitFor({ timeout: STEP_MS });
  await waitForPending(pageA, 1);
  await a.context.setOffline(false);
  await pageA.locator("#network-state", { hasText: /^Online/ }).waitFor();
  await sync(pageA);
  const rejected = pageA.locator("#rejected li", { hasText: "A duplicate number" });
  await rejected.waitFor({ timeout: STEP_MS });
  const reason = await rejected.locator(".reason").innerText();
  assert.match(reason, /Number/, `the reason names the member: ${reason}`);
  assert.match(reason, /unique|already|taken/i, `the reason says why: ${reason}`);
  await waitForPending(pageA, 0);
  await row(pageA, "A duplicate number").waitFor({ state: "detached", timeout: STEP_MS });
  await screenshot(pageA, "rejected", /Work orders/);

  // The rejection stays listed across a reload until it is dismissed.
  await pageA.reload();
  await rejected.waitFor({ timeout: STEP_MS });
  await rejected.getByRole("button", { name: /Dismiss/ }).click();
  await rejected.waitFor({ state: "detached" });
  await pageA.reload();
  await pageA.locator("main h1", { hasText: "Work orders" }).waitFor({ timeout: STEP_MS });
  assert.equal(await pageA.locator("#rejected li").count(), 0);

  // The profile shows the technician's own id, for the planner to assign work to.
  await pageB.locator("#nav").getByRole("link", { name: "Profile" }).click();
  await pageB.locator("main h1", { hasText: "Profile" }).waitFor();
  assert.equal(await pageB.locator("#profile-user-id").innerText(), aliceId);
  await screenshot(pageB, "profile", /Profile/);

  // After all those syncs, no answer of the API was ever cached.
  for (const page of [pageA, pageB]) {
    const api = (await cachedPaths(page)).filter((path) => path.startsWith("/v1/"));
    assert.deepEqual(api, [], "API answers in the service worker's cache");
  }

  assert.deepEqual([...a.errors, ...b.errors], [], "no console or page errors");
});
