// The page: starts the worker that holds the device database, registers the service worker
// that keeps the app shell for offline starts, and runs the app's screens.

import "./styles.css";

import { connectWorker } from "@ferry/sdk";

import { MODEL_TEXT } from "./model";
import type { ServiceEvent } from "./service/api";
import { DATABASE_NAME, FieldDevice } from "./service/device";
import { App, type ShellElements } from "./ui/app";
import { messageOf } from "./ui/context";

function element<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`index.html lacks #${id}`);
  return found as T;
}

async function registerServiceWorker(): Promise<void> {
  if (!import.meta.env.PROD || !("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register(new URL("sw.js", document.baseURI), { scope: "./" });
  } catch (error) {
    // The app works online without it; only offline starts need it.
    console.warn(`the app will not start offline: ${messageOf(error)}`);
  }
}

async function start(): Promise<void> {
  const ui: ShellElements = {
    main: element("main"),
    nav: element("nav"),
    network: element("network-state"),
    pending: element("pending-count"),
    lastSync: element("last-sync"),
    syncButton: element("sync-button"),
    cancelButton: element("cancel-sync"),
    progress: element("sync-progress"),
    syncMessage: element("sync-message"),
    rejected: element("rejected"),
    announcer: element("announcer"),
  };
  void registerServiceWorker();
  const worker = new Worker(new URL("./worker.ts", import.meta.url), { type: "module", name: "ferry-device" });
  let app: App | null = null;
  const early: ServiceEvent[] = [];
  const device = new FieldDevice(
    (server) => connectWorker(worker, { model: MODEL_TEXT, storage: DATABASE_NAME, server }),
    (event) => (app ? app.handle(event) : early.push(event)),
  );
  app = new App(device, ui);
  for (const event of early.splice(0)) app.handle(event);
  // The API is served beside the app: the server is where the page came from.
  const server = new URL("./", document.baseURI).href.replace(/\/$/, "");
  try {
    await app.start(server);
  } catch (error) {
    ui.main.replaceChildren();
    const heading = document.createElement("h1");
    heading.id = "screen-title";
    heading.textContent = "The device database could not be opened";
    const detail = document.createElement("p");
    detail.className = "error";
    detail.textContent = messageOf(error);
    ui.main.append(heading, detail);
  }
}

void start();
