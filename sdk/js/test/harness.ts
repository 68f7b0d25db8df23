/**
 * What the tests share: the sample model, a device database on memory or a file, and a real
 * Ferry server (`ferry serve`) on SQLite or PostgreSQL in a temporary directory, with users.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { memoryStorage, openDatabase } from "@ferry/sdk";
import type { Database, SqlConnection } from "@ferry/sdk";

/** The package's folder (`sdk/js`). */
export const PACKAGE = fileURLToPath(new URL("../../", import.meta.url));

/** The `ferry` binary: `FERRY_BIN`, or the repository's debug build. */
export const FERRY = process.env["FERRY_BIN"] ?? resolve(PACKAGE, "../../target/debug/ferry");

/** The sample model file the tests run on. */
export const MODEL_PATH = resolve(PACKAGE, "../../crates/ferry-model/src/samples/field_service.toml");

/** The sample model's text. */
export const MODEL = await readFile(MODEL_PATH, "utf8");

/** A database in memory, with its connection for checks the SDK's API does not make. */
export async function inspectedDatabase(): Promise<{ db: Database; connection: SqlConnection }> {
  let connection: SqlConnection | null = null;
  const memory = memoryStorage();
  const db = await openDatabase({
    model: MODEL,
    storage: {
      description: memory.description,
      async open(context) {
        const opened = await memory.open(context);
        connection = opened.connection;
        return opened;
      },
    },
  });
  assert.ok(connection !== null);
  return { db, connection };
}

/** A database in memory for the sample model. */
export async function memoryDatabase(): Promise<Database> {
  return await openDatabase({ model: MODEL, storage: memoryStorage() });
}

/** A fresh temporary directory. */
export async function scratch(name: string): Promise<string> {
  return await mkdtemp(join(tmpdir(), `ferry-sdk-${name}-`));
}

/** Runs `ferry` to its end with `input` on standard input; gives its output, or throws with it. */
export function ferry(args: string[], input = ""): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(FERRY, args, { stdio: ["pipe", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", fail);
    child.on("close", (code) => (code === 0 ? done(output) : fail(new Error(`ferry ${args.join(" ")} exited ${code}: ${output}`))));
    child.stdin.end(input);
  });
}

/** The backends the end-to-end tests run on: SQLite, and PostgreSQL when `FERRY_TEST_POSTGRES` is set. */
export function backends(): ("sqlite" | "postgres")[] {
  return process.env["FERRY_TEST_POSTGRES"] ? ["sqlite", "postgres"] : ["sqlite"];
}

let databases = 0;

/** A fresh PostgreSQL database on the test server, made with `psql`; gives its URL. */
async function freshPostgres(admin: string): Promise<string> {
  databases += 1;
  const name = `ferry_sdk_js_${process.pid}_${databases}`;
  await run("psql", [admin, "-v", "ON_ERROR_STOP=1", "-q", "-c", `DROP DATABASE IF EXISTS ${name}`, "-c", `CREATE DATABASE ${name}`]);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops a database `freshPostgres` made. */
async function dropPostgres(admin: string, url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await run("psql", [admin, "-v", "ON_ERROR_STOP=1", "-q", "-c", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
}

function run(program: string, args: string[]): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(program, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", fail);
    child.on("close", (code) => (code === 0 ? done() : fail(new Error(`${program} exited ${code}: ${output}`))));
  });
}

/** A user the tests sign in as. */
export interface User {
  name: string;
  role: "Technician" | "Planner" | "Admin";
}

/** The password of every test user. */
export const PASSWORD = "correct horse battery staple";

/** A running server. */
export interface TestServer {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  /** The server's database (`sqlite:…` or a PostgreSQL URL). */
  database: string;
  /** Its temporary directory. */
  dir: string;
  /** Stops the server and removes its directory. */
  stop(): Promise<void>;
}

/** Starts `ferry serve` on a fresh database of `backend`, with these users. */
export async function startServer(backend: "sqlite" | "postgres", users: User[]): Promise<TestServer> {
  const dir = await scratch("server");
  const database = backend === "postgres" ? await freshPostgres(process.env["FERRY_TEST_POSTGRES"] ?? "") : `sqlite:${join(dir, "ferry.db")}`;
  for (const user of users) {
    await ferry(["user", "add", user.name, "--role", user.role, "--password-stdin", "--model", MODEL_PATH, "--database", database], `${PASSWORD}\n`);
  }
  const child = spawn(
    FERRY,
    ["serve", "--model", MODEL_PATH, "--database", database, "--files", join(dir, "files"), "--listen", "127.0.0.1:0"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const url = await new Promise<string>((done, fail) => {
    let output = "";
    const timer = setTimeout(() => fail(new Error(`ferry serve did not start in time: ${output}`)), 30_000);
    const look = (chunk: Buffer) => {
      output += chunk.toString();
      const found = /serving model version \S+ on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (found?.[1] !== undefined) {
        clearTimeout(timer);
        done(found[1]);
      }
    };
    child.stdout?.on("data", look);
    child.stderr?.on("data", look);
    child.on("close", (code) => {
      clearTimeout(timer);
      fail(new Error(`ferry serve exited ${code}: ${output}`));
    });
  });
  return {
    url,
    database,
    dir,
    stop: async () => {
      await stopChild(child);
      await rm(dir, { recursive: true, force: true });
      if (backend === "postgres") await dropPostgres(process.env["FERRY_TEST_POSTGRES"] ?? "", database);
    },
  };
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) return done();
    child.once("close", () => done());
    child.kill("SIGTERM");
  });
}

/** Waits until `check` holds, polling; fails with `what` after `ms` milliseconds. */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
