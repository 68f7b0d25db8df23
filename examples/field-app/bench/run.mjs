// Drives the sync benchmark page (dist/bench.html, served by `ferry serve --app dist`) in
// headless Chromium and prints what it measured as one JSON line on standard output:
// `{"initial_ms", "push_ms", "bytes"}`, each the best of the rounds. `ferry bench --only browser`
// runs it; each round's times go to standard error.
//
//   FERRY_PASSWORD=… node bench/run.mjs --url http://127.0.0.1:8750/bench.html \
//     --rows 100000 --push 1000 --rounds 3 --user planner [--profile]
//
// It exits non-zero, saying why, when the page fails, when anything logs an error to the
// console (the page or its worker), or when the page does not finish in time.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

import { CHROMIUM, CHROMIUM_ARGS } from "../../../test-support/ferry.mjs";

/** How long one round may take, in milliseconds (a 100,000-object sync takes seconds). */
const ROUND_MS_MAX = 5 * 60_000;

const USAGE = "usage: FERRY_PASSWORD=… node bench/run.mjs --url URL --rows N --push N --rounds N --user NAME [--profile]";

/** Why the benchmark failed: said on standard error, with a non-zero exit. */
class Failure extends Error {}

function fail(message) {
  throw new Failure(message);
}

function options() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        url: { type: "string" },
        rows: { type: "string" },
        push: { type: "string" },
        rounds: { type: "string" },
        user: { type: "string" },
        profile: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (error) {
    fail(`${error.message}\n${USAGE}`);
  }
  const count = (name) => {
    const text = parsed[name];
    if (text === undefined) fail(`--${name} is missing\n${USAGE}`);
    const value = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) fail(`--${name} takes a whole number of at least 1, not ${JSON.stringify(text)}`);
    return value;
  };
  if (parsed.url === undefined) fail(`--url is missing\n${USAGE}`);
  let url;
  try {
    url = new URL(parsed.url);
  } catch {
    fail(`--url takes the benchmark page's URL, not ${JSON.stringify(parsed.url)}`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") fail(`--url must be http or https, not ${JSON.stringify(parsed.url)}`);
  const rows = count("rows");
  const push = count("push");
  const rounds = count("rounds");
  if (parsed.user === undefined || parsed.user === "") fail(`--user is missing\n${USAGE}`);
  const password = process.env.FERRY_PASSWORD;
  if (password === undefined || password === "") fail("the user's password must be in the environment variable FERRY_PASSWORD");
  return { url, rows, push, rounds, user: parsed.user, profile: parsed.profile, password };
}

async function main() {
  const given = options();
  const url = new URL(given.url);
  url.searchParams.set("rows", String(given.rows));
  url.searchParams.set("push", String(given.push));
  url.searchParams.set("rounds", String(given.rounds));
  url.searchParams.set("user", given.user);
  if (given.profile) url.searchParams.set("profile", "1");

  // The page is asked for first without the browser, whose navigation error would say less.
  let answered;
  try {
    answered = await fetch(url.href);
    await answered.body?.cancel();
  } catch (error) {
    fail(`cannot reach ${url.origin}: ${error.cause?.message ?? error.message}`);
  }
  if (!answered.ok) fail(`${url.origin}${url.pathname} answered ${answered.status}: is the field app built (npm run build) and served with --app dist?`);

  const profile = mkdtempSync(join(tmpdir(), "ferry-bench-chromium-"));
  const errors = [];
  let context = null;
  try {
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (message) => {
      if (message.type() === "error") errors.push(`console error: ${message.text()}`);
    });
    page.on("pageerror", (error) => errors.push(`page error: ${error.message}`));
    page.on("crash", () => errors.push("the page crashed"));
    await page.goto(url.href);
    await page.waitForFunction(() => typeof window.ferryBench?.run === "function", null, { timeout: 30_000 });
    const logged = setInterval(() => void forward(page), 1000);
    const limit = ROUND_MS_MAX * given.rounds;
    let timer;
    let result;
    try {
      result = await Promise.race([
        page.evaluate((password) => window.ferryBench.run(password), given.password),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Failure(`the page did not finish its ${given.rounds} rounds within ${limit / 60_000} minutes`)), limit);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      clearInterval(logged);
      await forward(page);
    }
    if (errors.length > 0) fail(`the page reported errors:\n${errors.join("\n")}`);
    process.stdout.write(`${JSON.stringify({ initial_ms: result.initial_ms, push_ms: result.push_ms, bytes: result.bytes })}\n`);
  } catch (error) {
    if (error instanceof Failure) throw error;
    // Playwright's messages carry a call log after their first line.
    const message = error instanceof Error ? error.message.split("\n")[0].replace(/^page\.evaluate: (Error: )?/, "") : String(error);
    fail([message, ...errors].join("\n"));
  } finally {
    await context?.close().catch(() => {});
    rmSync(profile, { recursive: true, force: true });
  }
}

let forwarded = 0;

/** Copies the lines the page logged since the last call to standard error. */
async function forward(page) {
  const text = await page.locator("#bench-log").textContent().catch(() => null);
  if (text === null) return;
  const lines = text.split("\n").filter((line) => line !== "");
  for (const line of lines.slice(forwarded)) process.stderr.write(`browser ${line}\n`);
  forwarded = Math.max(forwarded, lines.length);
}

try {
  await main();
} catch (error) {
  process.stderr.write(`bench/run.mjs: ${error instanceof Failure ? error.message : error?.stack ?? String(error)}\n`);
  process.exitCode = 1;
}
