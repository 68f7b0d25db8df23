// The sync core's golden transcripts (crates/ferry-sync/transcripts), run against the
// WebAssembly build through the same JSON bridge the TypeScript shell uses: each `> ` line becomes
// the JSON event a shell sends, `Machine.handle` answers with JSON actions, and the actions, as
// the transcripts show them, must be the file's `< ` lines exactly.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

import { Machine, Transcript, Core, initSync } from "../../wasm/ferry_wasm.js";

const here = fileURLToPath(new URL(".", import.meta.url));
const directory = join(here, "../../../../crates/ferry-sync/transcripts");
initSync({ module: readFileSync(join(here, "../../wasm/ferry_wasm_bg.wasm")) });

const modelText = readFileSync(join(directory, "model.toml"), "utf8");
const files = readdirSync(directory).filter((name) => name.endsWith(".txt")).sort();

/** Plays a transcript; gives it as the WebAssembly machine plays it. With `bytes`, answers go in
 * through `handleAnswer` (the body as bytes), as a shell sends a download's pages. */
function play(written, bytes) {
  const core = new Core(modelText);
  const transcript = new Transcript(modelText);
  const machine = new Machine(core);
  let upgrade = undefined;
  const out = [];
  for (const line of written.split("\n")) {
    if (line.startsWith("< ")) continue;
    out.push(line);
    if (!line.startsWith("> ")) continue;
    const event = transcript.event(line.slice(2), upgrade);
    const parsed = JSON.parse(event);
    const actions = JSON.parse(
      bytes && parsed.kind === "answer"
        ? machine.handleAnswer(parsed.status, new TextEncoder().encode(parsed.body))
        : machine.handle(event),
    );
    const rendered = machine.rendered();
    const lines = rendered === "" ? [] : rendered.split("\n");
    assert.equal(actions.length, lines.length, `one JSON action per action after \`${line}\``);
    for (const [index, action] of actions.entries()) {
      assert.equal(typeof action.kind, "string", `action ${index} after \`${line}\` has a kind`);
      if (action.kind === "upgrade-model") upgrade = action.text;
      agrees(action, lines[index]);
      out.push(`< ${lines[index]}`);
    }
  }
  return out.join("\n");
}

/** The JSON action says what its transcript line says. */
function agrees(action, line) {
  const says = (text) => assert.ok(line.includes(text), `\`${line}\` and ${JSON.stringify(action)}`);
  switch (action.kind) {
    case "send":
      says(`${action.method} ${action.path}`);
      if (action.body.kind === "json") says(action.body.text);
      break;
    case "wait":
      says(`wait ${action.ms} ms`);
      break;
    case "read-entity":
    case "read-revisions":
      says(action.entity);
      break;
    case "download":
      if (action.step.kind === "begin") says(`begin ${action.step.entity}`);
      if (action.step.kind === "page") {
        for (const object of action.step.objects) says(object.id);
        assert.ok(action.step.objects.every((o) => Array.isArray(o.row)), "pages carry rows");
      }
      break;
    case "finish":
      says(action.error ? "finish with error" : "finish");
      break;
    default:
      says(action.kind);
  }
}

test("the transcripts are there", () => {
  assert.ok(files.length >= 30, `${files.length} transcripts in ${directory}`);
});

for (const name of files) {
  test(name.replace(/\.txt$/, ""), () => {
    const written = readFileSync(join(directory, name), "utf8");
    assert.equal(play(written, false), written, "answers as JSON events");
    assert.equal(play(written, true), written, "answers' bodies as bytes");
  });
}

test("an event that is not one is refused with its reason", () => {
  const core = new Core(modelText);
  const machine = new Machine(core);
  assert.throws(() => machine.handle(`{"kind":"thunder"}`), /the event: unknown variant `thunder`/);
  assert.throws(() => machine.handle(`not json`), /the event/);
  const actions = JSON.parse(
    machine.handle(
      JSON.stringify({
        kind: "start",
        job: { kind: "follow-model" },
        device: "d",
        upload_id: "u",
        seed: 1,
        started: "2026-12-01T10:00:00Z",
      }),
    ),
  );
  assert.deepEqual(actions.map((a) => a.kind), ["send"]);
});
