// Copies the sample field-service model into the app's sources, so the build bundles the very
// model the server loads: the app opens its device database offline, before any sign-in could
// fetch the model from the server.
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const source = fileURLToPath(
  new URL("../../../crates/ferry-model/src/samples/field_service.toml", import.meta.url),
);
const target = fileURLToPath(new URL("../src/generated/field_service.toml", import.meta.url));

mkdirSync(new URL("../src/generated/", import.meta.url), { recursive: true });
copyFileSync(source, target);
