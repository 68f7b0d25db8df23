// The file contents check's worker: each check runs on a fresh OPFS device database
// (opfsStorage, as the app's worker has it) and tells the page what the database and the OPFS
// folder of its contents held at each step.
//
// - `collect`: two contents attached to two photos and committed, one photo deleted, then
//   collectFiles with a grace of a day and with none, and the database opened again.
// - `locked`: collectFiles while the file of an unreferenced content is held open, which OPFS
//   refuses to remove, and again once it is closed.

import type { Database, FerryObject } from "@ferry/sdk";
import { FerryError, OPFS_FILES_DIRECTORY, openDatabase, opfsStorage, removeOpfsDatabase } from "@ferry/sdk";

import type { CheckAnswer, CheckRequest, CollectResult, LockedResult } from "./files-check-protocol";
import { MODEL_TEXT, PHOTO } from "./model";

const DAY_MS = 24 * 3_600_000;

/** The OPFS folder of the database's file contents. */
async function contentsFolder(name: string): Promise<FileSystemDirectoryHandle> {
  const root = await navigator.storage.getDirectory();
  return await (await root.getDirectoryHandle(OPFS_FILES_DIRECTORY)).getDirectoryHandle(name);
}

/** The files under `ferry-files/<name>/`, as paths relative to it, sorted. */
async function listContents(name: string): Promise<string[]> {
  const paths: string[] = [];
  const walk = async (directory: FileSystemDirectoryHandle, prefix: string) => {
    for await (const [entry, handle] of directory.entries()) {
      if (handle.kind === "directory") await walk(handle as FileSystemDirectoryHandle, `${prefix}${entry}/`);
      else paths.push(`${prefix}${entry}`);
    }
  };
  await walk(await contentsFolder(name), "");
  return paths.sort();
}

async function bytesOf(content: Blob | null): Promise<number[] | null> {
  return content === null ? null : Array.from(new Uint8Array(await content.arrayBuffer()));
}

function png(bytes: number[]): Blob {
  return new Blob([new Uint8Array(bytes)], { type: "image/png" });
}

async function open(name: string): Promise<Database> {
  return await openDatabase({ model: MODEL_TEXT, storage: opfsStorage(name) });
}

/** Runs `check` on a fresh database `name`, removing it afterwards. */
async function onFreshDatabase<T>(name: string, check: (db: Database, reopen: () => Promise<Database>) => Promise<T>): Promise<T> {
  await removeOpfsDatabase(name);
  let db = await open(name);
  try {
    return await check(db, async () => {
      await db.close();
      db = await open(name);
      return db;
    });
  } finally {
    await db.close();
    await removeOpfsDatabase(name);
  }
}

function collect(request: Extract<CheckRequest, { check: "collect" }>): Promise<CollectResult> {
  const { name } = request;
  return onFreshDatabase(name, async (db, reopen) => {
    const kept = db.create(PHOTO);
    await db.attachFile(kept, png(request.kept), "kept.png");
    const dropped = db.create(PHOTO);
    await db.attachFile(dropped, png(request.dropped), "dropped.png");
    await db.commit([kept, dropped]);
    const afterCommit = await listContents(name);
    const droppedBeforeDelete = await bytesOf(await db.readFile(dropped));

    const deletion = await db.delete(dropped);
    const photosAfterDelete = (await db.query(PHOTO)).map((photo) => photo.id).sort();

    const removedWithinGrace = await db.collectFiles(DAY_MS);
    const afterGrace = await listContents(name);
    const removed = await db.collectFiles(0);
    const afterCollect = await listContents(name);

    const found = await db.find(PHOTO, kept.id);
    const keptRead = found === null ? null : await bytesOf(await db.readFile(found));
    // An object still carrying the dropped content's hash, as an app may hold one.
    const stale: FerryObject = { ...dropped, deleted: false };
    const droppedRead = await bytesOf(await db.readFile(stale));

    const again = await reopen();
    const reopened = await again.find(PHOTO, kept.id);
    const keptReadAfterReopen = reopened === null ? null : await bytesOf(await again.readFile(reopened));
    const removedAfterReopen = await again.collectFiles(0);
    const afterReopen = await listContents(name);

    return {
      type: "check-done",
      check: "collect",
      id: request.id,
      keptHash: String(kept.values["ContentHash"]),
      droppedHash: String(dropped.values["ContentHash"]),
      afterCommit,
      droppedBeforeDelete,
      deletion,
      photosAfterDelete,
      removedWithinGrace,
      afterGrace,
      removed,
      afterCollect,
      keptRead,
      droppedRead,
      keptReadAfterReopen,
      removedAfterReopen,
      afterReopen,
    };
  });
}

function locked(request: Extract<CheckRequest, { check: "locked" }>): Promise<LockedResult> {
  const { name } = request;
  return onFreshDatabase(name, async (db) => {
    const draft = db.create(PHOTO);
    await db.attachFile(draft, png(request.content), "draft.png");
    const hash = String(draft.values["ContentHash"]);
    const file = await (await (await contentsFolder(name)).getDirectoryHandle(hash.slice(0, 2))).getFileHandle(hash);
    // A Worker's file handles have createSyncAccessHandle; the page's types (the DOM's) lack it.
    const access = await (file as unknown as { createSyncAccessHandle(): Promise<{ close(): void }> }).createSyncAccessHandle();
    let whileOpen: LockedResult["whileOpen"];
    try {
      whileOpen = { removed: await db.collectFiles(0) };
    } catch (error) {
      whileOpen = error instanceof FerryError ? { kind: error.kind, message: error.message } : { kind: "not a FerryError", message: String(error) };
    } finally {
      access.close();
    }
    const afterOpen = await listContents(name);
    const removedAfterClose = await db.collectFiles(0);
    const afterClose = await listContents(name);
    return { type: "check-done", check: "locked", id: request.id, hash, whileOpen, afterOpen, removedAfterClose, afterClose };
  });
}

self.addEventListener("message", (event: MessageEvent<CheckRequest>) => {
  const request = event.data;
  if (request?.type !== "check") return;
  (request.check === "collect" ? collect(request) : locked(request)).then(
    (result) => self.postMessage(result satisfies CheckAnswer),
    (error: unknown) =>
      self.postMessage({
        type: "check-failed",
        id: request.id,
        message: error instanceof Error ? error.message : String(error),
      } satisfies CheckAnswer),
  );
});
