// The benchmark's worker: runs each round of the sync benchmark against the server the page
// came from, on a fresh OPFS device database (opfsStorage, as the app's worker has it), and
// tells the page what it measured. With profiling asked for, it also tells where each sync's
// time went, by timing the calls the SDK makes into the sync core, SQLite and the network.

import type { FerryObject, OpenStorage, SqlConnection, SqlValue, Storage } from "@ferry/sdk";
import { Machine, SyncEngine, openDatabase, opfsStorage, removeOpfsDatabase } from "@ferry/sdk";

import type { Profile, RoundRequest, RoundResult, WorkerAnswer } from "./bench-protocol";
import { MODEL_TEXT, WORK_ORDER } from "./model";

/** The database of a round: a name of its own, removed before the round (if a run left it) and after. */
function databaseName(round: number): string {
  return `ferry-bench-${round}`;
}

/** The first number of the work orders a round pushes: clear of the seeded ones and of other clients' pushes. */
function firstNumber(rows: number, push: number, round: number): number {
  return 20 * rows + round * push + 1;
}

/** Time spent in each kind of call while a profile is being taken. */
class Profiler {
  readonly #times = { core: 0, parse: 0, sql: 0, commit: 0, fetch: 0, statements: 0 };
  #started = 0;
  #restore: (() => void)[] = [];

  /** Starts timing: wraps the calls it measures until `stop`. */
  start(): void {
    this.#started = performance.now();
    const times = this.#times;
    const wrap = <T extends object, K extends keyof T>(target: T, key: K, add: (ms: number) => void) => {
      const original = target[key] as unknown as (...args: unknown[]) => unknown;
      (target as Record<K, unknown>)[key] = function (this: unknown, ...args: unknown[]) {
        const at = performance.now();
        try {
          return original.apply(this, args);
        } finally {
          add(performance.now() - at);
        }
      };
      this.#restore.push(() => ((target as Record<K, unknown>)[key] = original));
    };
    wrap(Machine.prototype, "handle", (ms) => (times.core += ms));
    wrap(Machine.prototype, "handleAnswer", (ms) => (times.core += ms));
    wrap(JSON, "parse", (ms) => (times.parse += ms));
    const fetchOriginal = globalThis.fetch;
    globalThis.fetch = async (...args: Parameters<typeof fetch>) => {
      const at = performance.now();
      try {
        return await fetchOriginal(...args);
      } finally {
        times.fetch += performance.now() - at;
      }
    };
    this.#restore.push(() => (globalThis.fetch = fetchOriginal));
  }

  /** Counts one statement's time (the connection tells it). */
  statement(sql: string, ms: number): void {
    if (this.#restore.length === 0) return;
    this.#times.sql += ms;
    this.#times.statements += 1;
    if (sql === "COMMIT") this.#times.commit += ms;
  }

  /** Stops timing; gives the profile. */
  stop(): Profile {
    const total = performance.now() - this.#started;
    for (const restore of this.#restore.splice(0).reverse()) restore();
    const { core, parse, sql, commit, fetch, statements } = this.#times;
    const profile = { total, core, parse, sql, commit, fetch, other: total - core - parse - sql, statements };
    this.#times.core = this.#times.parse = this.#times.sql = this.#times.commit = this.#times.fetch = this.#times.statements = 0;
    return profile;
  }
}

const profiler = new Profiler();

/** A connection that tells the profiler how long each statement took. */
function timed(connection: SqlConnection): SqlConnection {
  const measure = <T>(sql: string, work: () => T): T => {
    const at = performance.now();
    try {
      return work();
    } finally {
      profiler.statement(sql, performance.now() - at);
    }
  };
  return {
    run: (sql: string, params?: readonly SqlValue[]) => measure(sql, () => connection.run(sql, params)),
    all: (sql: string, params?: readonly SqlValue[]) => measure(sql, () => connection.all(sql, params)),
    exec: (sql: string) => measure(sql, () => connection.exec(sql)),
  };
}

/**
 * The round's OPFS storage, keeping its connection for the checks the SDK's API does not make;
 * its statements are timed only when the round profiles.
 */
function benchStorage(name: string, profile: boolean): { storage: Storage; connection: () => SqlConnection } {
  const opfs = opfsStorage(name);
  let opened: OpenStorage | null = null;
  const storage: Storage = {
    description: opfs.description,
    async open(context) {
      const inner = await opfs.open(context);
      opened = profile ? { ...inner, connection: timed(inner.connection) } : inner;
      return opened;
    },
  };
  const connection = () => {
    if (opened === null) throw new Error(`the benchmark's database ${name} is not open`);
    return opened.connection;
  };
  return { storage, connection };
}

function count(connection: SqlConnection, sql: string, params: SqlValue[] = []): number {
  return Number(connection.all(sql, params)[0]?.[0] ?? -1);
}

/** Runs `sync` and times it, with a profile when asked. */
async function measure<T>(profile: boolean, sync: () => Promise<T>): Promise<{ ms: number; value: T; profile: Profile | null }> {
  if (profile) profiler.start();
  const at = performance.now();
  try {
    const value = await sync();
    const ms = performance.now() - at;
    return { ms, value, profile: profile ? profiler.stop() : null };
  } catch (error) {
    if (profile) profiler.stop();
    throw error;
  }
}

async function round(request: RoundRequest): Promise<RoundResult> {
  const { rows, push, round } = request;
  const name = databaseName(round);
  await removeOpfsDatabase(name);
  const { storage, connection } = benchStorage(name, request.profile);
  const db = await openDatabase({ model: MODEL_TEXT, storage });
  try {
    const engine = new SyncEngine(db, { server: "" });
    await engine.signIn(request.user, request.password);

    const initial = await measure(request.profile, () => engine.sync({ mode: "all" }));
    const downloaded = initial.value.downloaded[WORK_ORDER] ?? 0;
    const entities = JSON.parse(db.core.entities()) as { name: string; table: string; members: { name: string; column: string }[] }[];
    const entity = entities.find((candidate) => candidate.name === WORK_ORDER);
    const numberColumn = entity?.members.find((member) => member.name === "Number")?.column;
    if (entity === undefined || numberColumn === undefined) throw new Error(`the model has no ${WORK_ORDER} with a Number`);
    const held = count(connection(), `SELECT count(*) FROM ${entity.table}`);
    const seeded = count(connection(), `SELECT count(*) FROM ${entity.table} WHERE ${numberColumn} BETWEEN 1 AND ?1`, [rows]);
    if (seeded !== rows) throw new Error(`the initial sync brought ${seeded} of the ${rows} seeded work orders`);
    if (downloaded !== held) throw new Error(`the initial sync reported ${downloaded} work orders downloaded, and the device holds ${held}`);
    const pageSize = count(connection(), "PRAGMA page_size");
    const pages = count(connection(), "PRAGMA page_count");
    const bytes = pageSize * pages;

    const orders: FerryObject[] = [];
    const first = firstNumber(rows, push, round);
    for (let i = 0; i < push; i++) {
      const order = db.create(WORK_ORDER);
      db.set(order, "Number", first + i);
      db.set(order, "Title", `Pushed ${first + i}`);
      orders.push(order);
    }
    await db.commit(orders);
    const pushed = await measure(request.profile, () => engine.sync({ mode: "unsynchronized" }));
    const report = pushed.value;
    if (report.rejected.length > 0) {
      const [rejected] = report.rejected;
      throw new Error(`the server rejected ${report.rejected.length} pushed work orders, the first because: ${rejected?.reason}`);
    }
    if (report.uploaded !== push) throw new Error(`the push confirmed ${report.uploaded} of ${push} work orders`);

    // The server is left with the work orders it had, so every round downloads the same.
    for (const order of orders) await db.delete(order);
    const cleared = await engine.sync({ mode: "unsynchronized" });
    if (cleared.uploaded !== push) throw new Error(`the deletion of the pushed work orders confirmed ${cleared.uploaded} of ${push}`);

    return {
      type: "round-done",
      round,
      initialMs: initial.ms,
      pushMs: pushed.ms,
      bytes,
      downloaded,
      initialProfile: initial.profile,
      pushProfile: pushed.profile,
    };
  } finally {
    await db.close();
    await removeOpfsDatabase(name);
  }
}

self.addEventListener("message", (event: MessageEvent<RoundRequest>) => {
  const request = event.data;
  if (request?.type !== "round") return;
  round(request).then(
    (result) => self.postMessage(result satisfies WorkerAnswer),
    (error: unknown) =>
      self.postMessage({
        type: "round-failed",
        round: request.round,
        message: error instanceof Error ? error.message : String(error),
      } satisfies WorkerAnswer),
  );
});
