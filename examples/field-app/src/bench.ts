// The sync benchmark's page (bench.html): runs rounds of the benchmark in its worker
// (bench-worker.ts) and shows what they measured. `ferry bench --only browser` drives it
// through bench/run.mjs, which opens it with the parameters in the query string
// (`?rows=N&push=N&rounds=N&user=NAME`, and `profile=1` to tell where each sync's time went)
// and calls `window.ferryBench.run(password)`; a person fills in the form instead.

import type { Profile, RoundRequest, RoundResult, WorkerAnswer } from "./bench-protocol";

/** What a run of the benchmark gives: the best of its rounds, and every round. */
export interface BenchResult {
  initial_ms: number;
  push_ms: number;
  bytes: number;
  rounds: RoundResult[];
}

/** The parameters of a run. */
export interface BenchParameters {
  rows: number;
  push: number;
  rounds: number;
  user: string;
  profile: boolean;
}

declare global {
  interface Window {
    ferryBench: { run(password: string, parameters?: BenchParameters): Promise<BenchResult> };
    benchResult?: BenchResult;
    benchError?: string;
  }
}

const log = document.getElementById("bench-log") as HTMLPreElement;
const form = document.getElementById("bench-form") as HTMLFormElement;

function say(line: string): void {
  log.textContent += `${line}\n`;
}

/** A whole number of at least 1 from the query string or the form, or an error naming it. */
function count(name: string, text: string | null): number {
  const value = Number(text);
  if (text === null || text.trim() === "" || !Number.isSafeInteger(value) || value < 1) {
    throw new Error(`the benchmark's \`${name}\` must be a whole number of at least 1, not ${JSON.stringify(text)}`);
  }
  return value;
}

function parametersFrom(get: (name: string) => string | null): BenchParameters {
  const user = get("user");
  if (user === null || user === "") throw new Error("the benchmark's `user` must name the user to sign in as");
  const profile = get("profile");
  return {
    rows: count("rows", get("rows")),
    push: count("push", get("push")),
    rounds: count("rounds", get("rounds")),
    user,
    profile: profile === "1" || profile === "true",
  };
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`;
}

function profileLine(profile: Profile | null): string {
  if (profile === null) return "";
  const parts = (["core", "parse", "sql", "commit", "other"] as const).map((key) => `${key} ${profile[key].toFixed(0)}`);
  return ` [${parts.join(", ")} ms; requests in flight ${profile.fetch.toFixed(0)} ms; ${profile.statements} statements]`;
}

let worker: Worker | null = null;
let running = false;

/** The worker, started once; its failures reject the round under way. */
function benchWorker(): Worker {
  worker ??= new Worker(new URL("./bench-worker.ts", import.meta.url), { type: "module", name: "ferry-bench" });
  return worker;
}

function runRound(request: RoundRequest): Promise<RoundResult> {
  const target = benchWorker();
  return new Promise((resolve, reject) => {
    const done = () => {
      target.removeEventListener("message", answered);
      target.removeEventListener("error", failed);
    };
    const answered = (event: MessageEvent<WorkerAnswer>) => {
      const answer = event.data;
      if (answer.round !== request.round) return;
      done();
      if (answer.type === "round-done") resolve(answer);
      else reject(new Error(`round ${request.round + 1}: ${answer.message}`));
    };
    const failed = (event: ErrorEvent) => {
      done();
      reject(new Error(`the benchmark's worker failed: ${event.message || "it could not be loaded"}`));
    };
    target.addEventListener("message", answered);
    target.addEventListener("error", failed);
    target.postMessage(request);
  });
}

async function run(password: string, given?: BenchParameters): Promise<BenchResult> {
  if (typeof password !== "string" || password === "") throw new Error("the benchmark needs the user's password");
  if (running) throw new Error("the benchmark is running already");
  running = true;
  try {
    const parameters = given ?? parametersFrom((name) => new URLSearchParams(location.search).get(name));
    const rounds: RoundResult[] = [];
    for (let round = 0; round < parameters.rounds; round++) {
      const { rows, push, user, profile } = parameters;
      const result = await runRound({ type: "round", round, rows, push, user, password, profile });
      rounds.push(result);
      say(
        `round ${round + 1}: initial sync ${ms(result.initialMs)} (${result.downloaded} work orders, ${result.bytes} bytes)${profileLine(result.initialProfile)}; ` +
          `push of ${parameters.push} ${ms(result.pushMs)}${profileLine(result.pushProfile)}`,
      );
    }
    const result: BenchResult = {
      initial_ms: Math.min(...rounds.map((r) => r.initialMs)),
      push_ms: Math.min(...rounds.map((r) => r.pushMs)),
      bytes: Math.min(...rounds.map((r) => r.bytes)),
      rounds,
    };
    say(`best: initial sync ${ms(result.initial_ms)}, push ${ms(result.push_ms)}, ${result.bytes} bytes`);
    window.benchResult = result;
    return result;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    window.benchError = message;
    say(`failed: ${message}`);
    throw error;
  } finally {
    running = false;
  }
}

window.ferryBench = { run };

const query = new URLSearchParams(location.search);
for (const name of ["rows", "push", "rounds", "user"]) {
  const input = form.elements.namedItem(name) as HTMLInputElement | null;
  const value = query.get(name);
  if (input !== null && value !== null) input.value = value;
}
form.addEventListener("submit", (event) => {
  event.preventDefault();
  const data = new FormData(form);
  const field = (name: string) => {
    const value = data.get(name);
    return typeof value === "string" ? value : null;
  };
  let parameters: BenchParameters;
  try {
    parameters = parametersFrom((name) => (name === "profile" ? query.get(name) : field(name)));
  } catch (error) {
    say(`failed: ${error instanceof Error ? error.message : String(error)}`);
    return;
  }
  run(field("password") ?? "", parameters).catch(() => {
    // Shown in the log already.
  });
});
