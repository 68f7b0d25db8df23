// `npm run demo`: serves the built app and the API with `ferry serve`, on an SQLite database in
// .demo/ (kept between runs; `npm run demo -- --fresh` starts over), with three demo users.
// Stop it with Ctrl-C.

import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

const app = new URL("../", import.meta.url);
const ferry = process.env.FERRY_BIN ?? fileURLToPath(new URL("../../target/debug/ferry", app));
const model = fileURLToPath(new URL("../../crates/ferry-model/src/samples/field_service.toml", app));
const dist = fileURLToPath(new URL("dist/", app));
const data = fileURLToPath(new URL(".demo/", app));
const listen = process.env.FERRY_LISTEN ?? "127.0.0.1:8750";
const database = `sqlite:${data}ferry.db`;

const USERS = [
  { name: "pat", role: "Planner", password: "pat's password" },
  { name: "alice", role: "Technician", password: "alice's password" },
  { name: "bob", role: "Technician", password: "bob's password" },
];

if (!existsSync(ferry)) {
  console.error(`ferry: no binary at ${ferry}; build it with \`cargo build -p ferry-cli\` or set FERRY_BIN`);
  process.exit(1);
}
if (process.argv.includes("--fresh")) rmSync(data, { recursive: true, force: true });

const fresh = !existsSync(`${data}ferry.db`);
mkdirSync(data, { recursive: true });
if (fresh) {
  for (const user of USERS) {
    const added = spawnSync(
      ferry,
      ["user", "add", user.name, "--role", user.role, "--password-stdin", "--model", model, "--database", database],
      { input: `${user.password}\n`, encoding: "utf8" },
    );
    if (added.status !== 0) {
      console.error(added.stderr.trim());
      process.exit(1);
    }
    console.log(`${added.stdout.trim()}; password: ${user.password}`);
  }
} else {
  console.log(`the demo database in ${data} is kept from an earlier run (users: ${USERS.map((u) => u.name).join(", ")})`);
}

const server = spawn(
  ferry,
  ["serve", "--model", model, "--database", database, "--files", `${data}files`, "--listen", listen, "--app", dist],
  { stdio: "inherit" },
);
console.log(`open http://${listen}/ (passwords are the user's name followed by "'s password")`);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => server.kill("SIGTERM"));
server.on("exit", (code) => process.exit(code ?? 0));
