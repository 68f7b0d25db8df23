// The console in headless Chromium against a real `ferry serve`: two planners' devices make the
// quickstart's rejected change (two work orders numbered 7), and an administrator signs in with
// the keyboard, finds the failure, corrects it to 8 and replays it, after which the planner's
// device receives it; a planner is told the console is for administrators only; users are
// added, refused, given roles and disabled; history and devices list the syncs; sessions are
// renewed and end; every page is screenshot at desktop and phone sizes; and nothing reaches the
// browser's console but the refusals the steps cause on purpose.

import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import {
  Browser,
  CONSOLE_DIR,
  CONSOLE_FILES,
  ConsoleFiles,
  Device,
  FILES_DIR,
  MODEL_FILE,
  RESULTS_DIR,
  Server,
  cleanup,
  colourCount,
  decodePng,
  temporaryDirectory,
} from "./harness.mjs";

/** How long a step may take to show its result, in milliseconds. */
const STEP_MS = 15_000;
const SIZES = [
  ["desktop", { width: 1280, height: 800 }],
  ["phone", { width: 375, height: 740 }],
];
const SESSION_KEY = "ferry-console.session";

const ADA = { name: "ada", password: "ada's password", role: "Admin" };
const PAT = { name: "pat", password: "pat's password", role: "Planner" };
const BOB = { name: "bob", password: "bob's password", role: "Planner" };

let directory;
let server;
let files = null;
let browser;
let page;
let consoleUrl;
let adminToken;
let patDevice;
let bobDevice;
/** Bob's work order, the one the server rejected. */
let rejectedId;
let failureId;

before(async () => {
  directory = temporaryDirectory("ferry-console-");
  mkdirSync(RESULTS_DIR, { recursive: true });
  server = new Server(directory);
  for (const user of [ADA, PAT, BOB]) await server.addUser(user.name, user.role, user.password);
  await server.start();
  if (FILES_DIR !== null) files = await ConsoleFiles.start(FILES_DIR, server.url);
  consoleUrl = `${files?.url ?? server.url}/console`;
  adminToken = await server.signIn(ADA.name, ADA.password);
  browser = await Browser.launch(directory);
  page = browser.page;
  page.setDefaultTimeout(STEP_MS);
});

after(async () => {
  await browser?.close().catch(() => {});
  await files?.stop();
  await server?.stop();
  if (directory) cleanup(directory);
});

/** The API's answer as ada, failing on an error status. */
async function asAdmin(method, path, body) {
  const { status, json } = await server.api(method, path, { token: adminToken, body });
  assert.equal(status, 200, `${method} ${path} answered ${status}: ${JSON.stringify(json)}`);
  return json;
}

/**
 * Screenshots the current page at desktop and phone sizes into test-results/, and checks each:
 * its main heading is visible, it shows something (not one colour), nothing is wider than the
 * window, and every visible form control has a label.
 */
async function screenshot(name, heading) {
  for (const [size, viewport] of SIZES) {
    await page.setViewportSize(viewport);
    const title = page.locator("main h1", { hasText: heading });
    await title.waitFor({ state: "visible" });
    const box = await title.boundingBox();
    assert.ok(
      box !== null && box.y >= 0 && box.y + box.height <= viewport.height,
      `${name} (${size}): the heading "${heading}" is in the window`,
    );
    const text = await page.locator("main").innerText();
    assert.doesNotMatch(
      text,
      /\b(?:null|undefined|NaN)\b|\[object /,
      `${name} (${size}): no value shows as a program's word`,
    );
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${name} (${size}): the page is ${overflow}px wider than the window`);
    const unlabelled = await page.evaluate(() =>
      Array.from(document.querySelectorAll("input, select, textarea"))
        .filter((control) => control.checkVisibility())
        .filter((control) => control.labels.length === 0 && !control.getAttribute("aria-label"))
        .map((control) => control.id || control.outerHTML),
    );
    assert.deepEqual(unlabelled, [], `${name} (${size}): form controls without a label`);
    const png = await page.screenshot({ fullPage: true });
    writeFileSync(join(RESULTS_DIR, `${name}-${size}.png`), png);
    const colours = colourCount(decodePng(png));
    assert.ok(colours >= 8, `${name} (${size}): the screenshot has only ${colours} colours`);
  }
  await page.setViewportSize(SIZES[0][1]);
}

/** Waits for the page whose main heading is `heading`. */
async function heading(text) {
  await page.locator("main h1", { hasText: text }).waitFor({ state: "visible" });
}

/** Signs in through the form (typing, then Enter). */
async function signIn(user) {
  await page.locator("#sign-in-user").fill(user.name);
  await page.locator("#sign-in-password").fill(user.password);
  await page.locator("#sign-in-password").press("Enter");
}

function storedSession() {
  return page.evaluate((key) => JSON.parse(sessionStorage.getItem(key) ?? "null"), SESSION_KEY);
}

function storeSession(session) {
  return page.evaluate(([key, value]) => sessionStorage.setItem(key, JSON.stringify(value)), [SESSION_KEY, session]);
}

async function go(hash) {
  await page.evaluate((next) => (location.hash = next), hash);
}

test("two planners' work orders 7: pat's is applied, bob's lands in SynchronizationError", async () => {
  patDevice = new Device(directory, PAT.name, PAT.password);
  bobDevice = new Device(directory, BOB.name, BOB.password);
  for (const device of [patDevice, bobDevice]) {
    await device.login(server.url);
    const created = await device.run("create", "Field.WorkOrder", "Number=7", "Title=Pump");
    await device.run("commit");
    const synced = await device.run("sync");
    if (device === patDevice) {
      assert.equal(synced.uploaded, 1, "pat's work order is uploaded");
      assert.deepEqual(synced.rejected, [], "pat's work order is applied");
    } else {
      rejectedId = created.id;
      assert.equal(synced.rejected.length, 1, `bob's work order is rejected: ${JSON.stringify(synced)}`);
      assert.equal(synced.rejected[0].id, rejectedId);
      assert.match(synced.rejected[0].reason, /must be unique/);
    }
  }
  const { failures } = await asAdmin("GET", "/v1/failures");
  assert.equal(failures.length, 1, "one failure on the server");
  assert.equal(failures[0].object_id, rejectedId);
  failureId = failures[0].id;
});

test(
  "the server serves this folder's console",
  { skip: FILES_DIR !== null && "FERRY_CONSOLE_DIR is set: the test's own server serves the files" },
  async () => {
    for (const entry of CONSOLE_FILES) {
      const answer = await fetch(`${server.url}${entry.path}`);
      assert.equal(answer.status, 200, `${entry.path} is served`);
      assert.equal(answer.headers.get("content-type"), entry.type, `${entry.path} has its type`);
      const expected = readFileSync(join(CONSOLE_DIR, entry.file), "utf8");
      assert.ok(
        (await answer.text()) === expected,
        `${entry.path} is ${entry.file} as it is in ${CONSOLE_DIR}: rebuild ferry after changing the console`,
      );
    }
    const other = await fetch(`${server.url}/console/other.js`);
    assert.equal(other.status, 404, "the console has only its three files");
  },
);

test("parsing the model and converting typed values, in the page", async () => {
  await page.goto(consoleUrl);
  await heading("Sign in");
  const results = await page.evaluate(
    async (modelText) => {
      const { parseModel, wireValue } = await import("/console/console.js");
      const model = parseModel(modelText);
      const order = model.entities.get("Field.WorkOrder");
      const typeOf = (entity, member) => model.entities.get(entity)?.members.get(member) ?? null;
      const attempt = (member, type, text) => {
        try {
          const value = wireValue(member, type, text);
          return typeof value === "bigint" ? `bigint ${value}` : value;
        } catch (error) {
          return `error ${error.message}`;
        }
      };
      const integer = { kind: "integer" };
      const decimal = { kind: "decimal", scale: 2 };
      return {
        members: [...order.members.keys()],
        number: typeOf("Field.WorkOrder", "Number"),
        status: typeOf("Field.WorkOrder", "Status"),
        amount: typeOf("Field.WorkOrder", "Amount"),
        site: typeOf("Field.WorkOrder", "Field.WorkOrder_Site"),
        photoFile: typeOf("Field.Photo", "FileName"),
        roles: model.roles,
        adminRoles: model.adminRoles,
        values: [
          attempt("Number", integer, "8"),
          attempt("Number", integer, " 9007199254740993 "),
          attempt("Number", integer, "9223372036854775808"),
          attempt("Number", integer, "eight"),
          attempt("Number", integer, ""),
          attempt("Amount", decimal, "12.50"),
          attempt("Amount", decimal, "+1.230"),
          attempt("Amount", decimal, "12.345"),
          attempt("Amount", decimal, "12,5"),
          attempt("Completed", { kind: "boolean" }, "false"),
          attempt("Completed", { kind: "boolean" }, "no"),
          attempt("DueDate", { kind: "datetime" }, "2026-11-23T10:00:00Z"),
          attempt("DueDate", { kind: "datetime" }, "tomorrow"),
          attempt("Status", status(model), "Done"),
          attempt("Status", status(model), "Lost"),
          attempt("Field.WorkOrder_Site", { kind: "reference" }, "01A24281-7F34-AA56-5065-90DDE6CC1EC4"),
          attempt("Field.WorkOrder_Site", { kind: "reference" }, "site 1"),
          attempt("Title", { kind: "string" }, " Pump "),
          attempt("Title", { kind: "string" }, ""),
        ],
      };
      function status(parsed) {
        return parsed.entities.get("Field.WorkOrder").members.get("Status");
      }
    },
    readFileSync(MODEL_FILE, "utf8"),
  );
  assert.deepEqual(results.members, [
    "Number",
    "Title",
    "Status",
    "Priority",
    "Amount",
    "DueDate",
    "Notes",
    "Completed",
    "Field.WorkOrder_Site",
    "Field.WorkOrder_AssignedTo",
  ]);
  assert.deepEqual(results.number, { kind: "integer" });
  assert.deepEqual(results.status, { kind: "enumeration", values: ["Open", "InProgress", "Done", "Closed"] });
  assert.deepEqual(results.amount, { kind: "decimal", scale: 2 });
  assert.deepEqual(results.site, { kind: "reference", target: "Field.Site" });
  assert.deepEqual(results.photoFile, { kind: "string" });
  assert.deepEqual(results.roles, ["Technician", "Planner", "Admin"]);
  assert.deepEqual(results.adminRoles, ["Admin"]);
  assert.deepEqual(results.values, [
    8,
    "bigint 9007199254740993",
    "error Number: expected a 64-bit integer (from -9223372036854775808 to 9223372036854775807), found 9223372036854775808",
    'error Number: expected a whole number, found "eight"',
    null,
    "12.50",
    "1.230",
    "error Amount: expected at most 2 digits after the point, found 12.345",
    'error Amount: expected a decimal number such as 12.50, found "12,5"',
    false,
    'error Completed: expected true or false, found "no"',
    "2026-11-23T10:00:00Z",
    'error DueDate: expected a UTC date-time such as 2026-11-23T10:00:00Z, found "tomorrow"',
    "Done",
    'error Status: expected one of Open, InProgress, Done, Closed, found "Lost"',
    "01a24281-7f34-aa56-5065-90dde6cc1ec4",
    'error Field.WorkOrder_Site: expected an object id such as 01a24281-7f34-aa56-5065-90dde6cc1ec4, found "site 1"',
    " Pump ",
    null,
  ]);
});

test("a wrong password and a planner are told why, and keep no session", async () => {
  await page.goto(consoleUrl);
  await heading("Sign in");
  await screenshot("sign-in", "Sign in");

  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("alert").filter({ hasText: "User name: enter it to sign in" }).waitFor();

  await browser.expectErrors(/status of 401.*\/v1\/sign-in/, 1, async () => {
    await signIn({ name: ADA.name, password: "not ada's password" });
    await page.getByRole("alert").filter({ hasText: "Wrong user name or password" }).waitFor();
  });
  assert.match(
    await page.locator(".request-id").innerText(),
    /Request id [0-9a-f]+/,
    "the refusal shows its request id",
  );

  await signIn(PAT);
  const refusal = page.getByRole("alert").filter({ hasText: "administrators only" });
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /pat has the role Planner, and only the role Admin may use it/);
  assert.equal(await storedSession(), null, "a planner keeps no session");
  assert.equal(await page.locator("nav").count(), 0, "no navigation without a session");
  await screenshot("sign-in-refused", "Sign in");

  // A planner's session that reaches the administrators' endpoints is refused there (403).
  const patToken = await server.signIn(PAT.name, PAT.password);
  await storeSession({ user: PAT.name, token: patToken, refreshToken: null, expiresAt: null, roles: [PAT.role] });
  await browser.expectErrors(/status of 403.*\/v1\/overview/, 1, async () => {
    await page.reload();
    await page.getByRole("alert").filter({ hasText: "Administrators only" }).waitFor();
  });
  assert.match(
    await page.getByRole("alert").filter({ hasText: "Administrators only" }).innerText(),
    /the server refused: only administrators may do this\./i,
  );
  await page.evaluate((key) => sessionStorage.removeItem(key), SESSION_KEY);
});

test("ada signs in with the keyboard only, and the overview shows 1 failure waiting", async () => {
  await page.goto(`${consoleUrl}#/overview`);
  await page.evaluate(() => sessionStorage.clear());
  await page.reload();
  await heading("Sign in");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "sign-in-user", "the user name has focus");
  await page.keyboard.type(ADA.name);
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement?.id), "sign-in-password", "Tab goes to the password");
  await page.keyboard.type(ADA.password);
  await page.keyboard.press("Enter");
  await heading("Overview");

  const overview = await asAdmin("GET", "/v1/overview");
  assert.equal(overview.failures_waiting, 1);
  assert.equal(await page.locator("#stat-failures-waiting .card-value").innerText(), "1");
  assert.equal(await page.locator("#stat-devices .card-value").innerText(), "2");
  assert.equal(await page.locator("#stat-users .card-value").innerText(), "3");
  assert.equal(await page.locator("#stat-live-devices .card-value").innerText(), String(overview.live_devices));
  assert.equal(await page.locator("#server-version").innerText(), overview.server_version);
  assert.equal(await page.locator("#model-version").innerText(), overview.model_version);
  const syncs = overview.syncs_per_minute.reduce((sum, [, count]) => sum + count, 0);
  assert.ok(syncs >= 2, `the server counted the two syncs: ${syncs}`);
  assert.match(await page.locator("#syncs-total").innerText(), new RegExp(`^${syncs} syncs in the last 30 minutes`));
  assert.equal(await page.locator(".chart .chart-bar").count(), 30, "a bar per minute");
  const session = await storedSession();
  assert.equal(session.user, ADA.name, "the session is kept in sessionStorage");
  assert.equal(await page.locator(".who strong").innerText(), ADA.name);
  await screenshot("overview", "Overview");

  // Keyboard only: focus is on the page's heading; Shift+Tab walks back through the bar (Sign
  // out, then the links from the last), and Enter follows the Failures link.
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "H1", "the heading has focus");
  const walked = [];
  for (let presses = 0; presses < 6 && walked.at(-1) !== "Failures"; presses++) {
    await page.keyboard.press("Shift+Tab");
    walked.push(await page.evaluate(() => document.activeElement?.textContent));
  }
  assert.deepEqual(walked, ["Sign out", "Devices", "History", "Users", "Failures"], "the bar's Tab order");
  const outline = await page.evaluate(() => {
    const style = getComputedStyle(document.activeElement);
    return { style: style.outlineStyle, width: parseFloat(style.outlineWidth) };
  });
  assert.ok(
    outline.style !== "none" && outline.width >= 2,
    `the focused link shows its focus: ${JSON.stringify(outline)}`,
  );
  await page.keyboard.press("Enter");
  await heading("Failures");
  assert.match(page.url(), /#\/failures$/);
});

test("the failures page lists bob's failure and filters by user", async () => {
  const row = page.locator("tbody tr").filter({ hasText: `#${failureId}` });
  await row.waitFor();
  const text = await row.innerText();
  for (const part of ["Field.WorkOrder", "create", "validation", "must be unique", "bob", "waiting"]) {
    assert.ok(text.includes(part), `the failure's row shows ${part}: ${text}`);
  }
  assert.equal(await page.locator("#failure-count").innerText(), "1 failure, newest first.");

  await page.locator("#filter-user").selectOption("pat");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.locator("#failure-count", { hasText: "No failures match." }).waitFor();
  assert.match(page.url(), /#\/failures\?user=pat$/);
  assert.equal(await page.locator("tbody tr").count(), 0);

  await page.locator("#filter-user").selectOption("bob");
  await page.locator("#filter-entity").selectOption("Field.WorkOrder");
  await page.locator("#filter-status").selectOption("waiting");
  await page.getByRole("button", { name: "Filter" }).click();
  await page.locator("#failure-count", { hasText: "1 failure" }).waitFor();
  assert.match(page.url(), /#\/failures\?entity=Field.WorkOrder&user=bob&status=waiting$/);
  await screenshot("failures", "Failures");

  await go("#/failures?status=replayed");
  await page.locator("#failure-count", { hasText: "No failures match." }).waitFor();
  await go("#/failures?status=lost");
  await page.getByRole("alert").filter({ hasText: 'Status: expected waiting or replayed, found "lost"' }).waitFor();
  await go("#/failures");
  await page.locator("#failure-count", { hasText: "1 failure" }).waitFor();
});

test("the failure shows attempted Number 7 beside none; a bad value is refused; 8 is applied", async () => {
  await page.getByRole("link", { name: `Failure ${failureId}` }).click();
  await heading(`Failure ${failureId}`);
  const number = page.locator('tr[data-member="Number"]');
  const input = number.getByLabel("Number");
  assert.equal(await input.inputValue(), "7", "the attempted Number");
  assert.equal(await number.locator("td.current").innerText(), "none", "no current object");
  await page.locator("#current-absent").waitFor();
  assert.match(await page.locator("#failure-reason").innerText(), /`Number` must be unique/);
  assert.equal(await page.locator('tr[data-member="Title"] input').inputValue(), "Pump");

  await page.reload();
  await heading(`Failure ${failureId}`);
  assert.match(page.url(), new RegExp(`#/failures/${failureId}$`), "a reload keeps the page");
  await screenshot("failure", `Failure ${failureId}`);

  // A value the member cannot take is refused in the page, and nothing is sent.
  await input.fill("eight");
  await page.getByRole("button", { name: "Replay" }).click();
  await number.getByText('Number: expected a whole number, found "eight"').waitFor();
  assert.equal(await input.getAttribute("aria-invalid"), "true");
  assert.equal((await asAdmin("GET", `/v1/failures/${failureId}`)).replayed_at, null, "nothing was replayed");

  // A value the server's rules refuse fails again, with the new reason, and the edit stays.
  await input.fill("0");
  await page.getByRole("button", { name: "Replay" }).click();
  const failed = page.locator("#replay-outcome").getByRole("alert");
  await failed.filter({ hasText: "Outcome: failed" }).waitFor();
  assert.match(await failed.innerText(), /Number/, `the reason names the member: ${await failed.innerText()}`);
  assert.equal(await input.inputValue(), "0", "the edit stays for another try");
  assert.equal((await asAdmin("GET", `/v1/failures/${failureId}`)).replayed_at, null, "still waiting");

  await input.fill("8");
  await input.press("Enter");
  await page.locator("#replay-outcome").getByRole("status").filter({ hasText: "Outcome: applied" }).waitFor();
  const replayed = await asAdmin("GET", `/v1/failures/${failureId}`);
  assert.notEqual(replayed.replayed_at, null, "the failure is replayed");
  assert.equal(replayed.current?.Number, 8, "the server holds Number 8");
  assert.equal(
    await page.locator('tr[data-member="Number"] td.current .value').innerText(),
    "8",
    "the page shows the server's 8",
  );
  assert.equal(
    await page.locator('tr[data-member="Number"] td.attempted').innerText(),
    "7",
    "beside what bob's device attempted",
  );
  assert.match(await page.locator("#failure-status").innerText(), /replayed/);
  assert.equal(
    await page.getByRole("button", { name: "Replay" }).count(),
    0,
    "a replayed failure cannot be replayed again",
  );
  await screenshot("failure-replayed", `Failure ${failureId}`);

  await page.getByRole("link", { name: "Overview", exact: true }).click();
  await heading("Overview");
  await page.locator("#stat-failures-waiting .card-value", { hasText: "0" }).waitFor();
  assert.equal((await asAdmin("GET", "/v1/overview")).failures_waiting, 0);

  await patDevice.run("sync");
  const { objects } = await patDevice.run("query", "Field.WorkOrder");
  const corrected = objects.find((object) => object.id === rejectedId);
  assert.ok(corrected !== undefined, `pat's device has bob's work order: ${JSON.stringify(objects)}`);
  assert.equal(corrected.values.Number, 8);
  assert.deepEqual(objects.map((object) => object.values.Number).sort(), [7, 8]);
});

test("users: a user is added, a bad one refused, roles set, and bob disabled", async () => {
  await page.getByRole("link", { name: "Users", exact: true }).click();
  await heading("Users");
  const rows = page.locator("tbody tr");
  await rows.first().waitFor();
  assert.deepEqual(await page.locator("tbody th").allInnerTexts(), ["ada (you)", "bob", "pat"]);
  assert.ok(await page.getByRole("button", { name: "Disable ada" }).isDisabled(), "ada cannot disable herself");
  await screenshot("users", "Users");

  // Nothing chosen: refused in the page.
  await page.locator("#new-user-name").fill("dave");
  await page.locator("#new-user-password").fill("dave's password");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.getByText("Roles: choose at least one role for the new user").waitFor();

  // A password the server refuses: its message, and no user.
  await page.getByRole("group", { name: "Roles" }).getByLabel("Planner").check();
  await page.locator("#new-user-password").fill("short");
  await browser.expectErrors(/status of 400.*\/v1\/users/, 1, async () => {
    await page.getByRole("button", { name: "Add user" }).click();
    await page.getByRole("alert").filter({ hasText: "Password must be 8 to 1024 bytes" }).waitFor();
  });
  assert.equal(
    (await asAdmin("GET", "/v1/users")).users.some((user) => user.name === "dave"),
    false,
    "no user dave",
  );

  await page.locator("#new-user-name").fill("carol");
  await page.locator("#new-user-password").fill("carol's password");
  await page.getByRole("group", { name: "Roles" }).getByLabel("Planner").uncheck();
  await page.getByRole("group", { name: "Roles" }).getByLabel("Technician").check();
  await page.locator("#new-user-password").press("Enter");
  await page.getByRole("status").filter({ hasText: "carol was added with the role Technician." }).waitFor();
  let carol = (await asAdmin("GET", "/v1/users")).users.find((user) => user.name === "carol");
  assert.deepEqual(carol?.roles, ["Technician"]);
  assert.equal(carol.disabled, false);

  await page.locator('tr[data-user="carol"] summary').click();
  await page.getByRole("group", { name: "Roles of carol" }).getByLabel("Planner").check();
  await page.locator('tr[data-user="carol"]').getByRole("button", { name: "Save roles" }).click();
  await page.getByRole("status").filter({ hasText: "carol has the roles Planner, Technician now." }).waitFor();
  carol = (await asAdmin("GET", "/v1/users")).users.find((user) => user.name === "carol");
  assert.deepEqual([...carol.roles].sort(), ["Planner", "Technician"]);

  await page.getByRole("button", { name: "Disable bob" }).click();
  await page.getByRole("status").filter({ hasText: "bob is disabled" }).waitFor();
  const bob = (await asAdmin("GET", "/v1/users")).users.find((user) => user.name === "bob");
  assert.equal(bob.disabled, true, "bob is disabled on the server");
  assert.match(await page.locator('tr[data-user="bob"]').innerText(), /disabled/);
  await page.getByRole("button", { name: "Enable bob" }).waitFor();
  const refused = await server.api("POST", "/v1/sign-in", { body: { user: BOB.name, password: BOB.password } });
  assert.equal(refused.status, 401, "a disabled user cannot sign in");
  await screenshot("users-changed", "Users");
});

test("history and devices list pat's and bob's syncs", async () => {
  await page.getByRole("link", { name: "History", exact: true }).click();
  await heading("History");
  const { entries } = await asAdmin("GET", "/v1/history");
  const rows = page.locator("tbody tr");
  await rows.first().waitFor();
  assert.equal(await rows.count(), entries.length, "a row per history entry");
  const devices = (await asAdmin("GET", "/v1/devices")).devices;
  for (const user of [PAT.name, BOB.name]) {
    const device = devices.find((candidate) => candidate.user === user);
    assert.ok(device !== undefined, `${user}'s device is known`);
    const synced = rows.filter({ hasText: device.device }).filter({ hasText: "all" });
    assert.ok((await synced.count()) >= 1, `the history shows ${user}'s sync`);
    assert.match(await synced.first().innerText(), new RegExp(user));
  }
  await screenshot("history", "History");

  await page.getByRole("link", { name: "Devices", exact: true }).click();
  await heading("Devices");
  await rows.first().waitFor();
  assert.equal(await rows.count(), devices.length);
  for (const device of devices) {
    const row = rows.filter({ hasText: device.device });
    const text = await row.innerText();
    assert.ok(
      text.includes(device.user) && text.includes(String(device.syncs)),
      `the row of ${device.user}'s device: ${text}`,
    );
  }
  assert.equal(devices.find((device) => device.user === PAT.name).syncs, 2, "pat synced twice");
  await screenshot("devices", "Devices");
});

test("an unknown failure or page says so", async () => {
  await browser.expectErrors(/status of 404.*\/v1\/failures\/999/, 1, async () => {
    await go("#/failures/999");
    await heading("Failure 999");
    await page.getByRole("alert").filter({ hasText: "No failure 999" }).waitFor();
  });
  assert.match(await page.locator(".request-id").innerText(), /Request id [0-9a-f]+/);
  await screenshot("failure-unknown", "Failure 999");
  await go("#/nowhere");
  await heading("Page not found");
  await screenshot("not-found", "Page not found");
});

test("a session about to expire is renewed; an ended one signs in again on the same page", async () => {
  const before = await storedSession();
  await storeSession({ ...before, expiresAt: "2000-01-01T00:00:00Z" });
  await go("#/devices");
  await heading("Devices");
  await page.locator("tbody tr").first().waitFor();
  const renewed = await storedSession();
  assert.notEqual(renewed.token, before.token, "a new access token");
  assert.notEqual(renewed.refreshToken, before.refreshToken, "a new refresh token");
  assert.ok(Date.parse(renewed.expiresAt) > Date.now(), "that expires later");

  await storeSession({ ...renewed, token: "0".repeat(64), refreshToken: "spent" });
  await browser.expectErrors(/status of 401.*\/v1\/(history|sign-in\/refresh)/, 2, async () => {
    await go("#/history");
    await heading("Sign in");
    await page.getByRole("alert").filter({ hasText: "Your session ended" }).waitFor();
  });
  assert.equal(await storedSession(), null, "the ended session is forgotten");
  await signIn(ADA);
  await heading("History");
  assert.match(page.url(), /#\/history$/);

  await page.getByRole("button", { name: "Sign out" }).click();
  await heading("Sign in");
  await page.getByRole("status").filter({ hasText: "You signed out." }).waitFor();
  assert.equal(await storedSession(), null);
});

test("nothing reached the browser's console over the whole run", () => {
  assert.deepEqual(browser.unexpectedErrors, []);
});
