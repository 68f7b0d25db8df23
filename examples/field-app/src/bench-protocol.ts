// The messages between the benchmark page (bench.ts) and its worker (bench-worker.ts).

/** What the page asks the worker: one round of the benchmark. */
export interface RoundRequest {
  type: "round";
  /** The round's number, from 0: it names the round's database and its work orders' numbers. */
  round: number;
  /** Work orders the server was seeded with (numbered 1 to `rows`). */
  rows: number;
  /** New work orders the round commits and uploads. */
  push: number;
  user: string;
  password: string;
  /** Whether to tell where the time of each sync went (it slows the sync a little). */
  profile: boolean;
}

/** Where a sync's time went, in milliseconds, when the round was asked to profile. */
export interface Profile {
  /** The whole sync. */
  total: number;
  /** In the sync core (`Machine.handle`, `Machine.handleAnswer`). */
  core: number;
  /** Parsing the core's actions (`JSON.parse` of text it gave). */
  parse: number;
  /** Running SQL (`run`, `all`, `exec` on the connection), the commit included. */
  sql: number;
  /** Of `sql`, the transactions' commits (written through to OPFS). */
  commit: number;
  /**
   * Requests in flight (`fetch` until the answer's headers). It overlaps the rest: the SDK asks
   * for a download's next page before it writes the page it has.
   */
  fetch: number;
  /** Everything but the core, parsing and SQL: waiting for answers, reading their bodies, converting rows, the SDK's own work. */
  other: number;
  /** Statements run. */
  statements: number;
}

/** What one round measured. */
export interface RoundResult {
  type: "round-done";
  round: number;
  /** The initial sync (mode `all`) of a fresh database, from start to resolve. */
  initialMs: number;
  /** The upload (mode `unsynchronized`) of the pushed work orders until every one is confirmed. */
  pushMs: number;
  /** The database's size after the initial sync. */
  bytes: number;
  /** Work orders the initial sync downloaded (the seeded ones and any the server had besides). */
  downloaded: number;
  initialProfile: Profile | null;
  pushProfile: Profile | null;
}

/** A round that failed, and why. */
export interface RoundFailure {
  type: "round-failed";
  round: number;
  message: string;
}

export type WorkerAnswer = RoundResult | RoundFailure;
