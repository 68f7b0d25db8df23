// The field app's operations on the Ferry SDK: the device database and its sync engine. In
// the browser the database lives in the app's dedicated Worker (OPFS works only there) and
// this runs on the page, on the SDK's `connectWorker` database and engine, which have the
// methods of `Database` and `SyncEngine`; anything with those methods will do (a test may give
// an in-memory database).

import {
  FerryError,
  type DeviceStatus,
  type Deletion,
  type FerryObject,
  type LiveCallbacks,
  type PendingObject,
  type QueryOptions as SdkQueryOptions,
  type SyncOptions,
  type SyncReport as SdkSyncReport,
  type Watch,
} from "@ferry/sdk";

import { FEEDBACK, PHOTO, SITE, VISIT, WORK_ORDER, type Item, type Value } from "../model";
import type {
  Change,
  DeviceState,
  FieldService,
  NewObjectRef,
  QueryOptions,
  Rejection,
  ServiceEvent,
  SyncReport,
} from "./api";

/** The OPFS name of the device database. */
export const DATABASE_NAME = "ferry-field";

/** How long a sync asked for waits for a live sync already running to end, in milliseconds. */
const BUSY_WAIT_MS_MAX = 60_000;
const BUSY_POLL_MS = 50;

/** The calls of the SDK's database the app makes (`Database` and `WorkerDatabase` have them). */
export interface DeviceDatabase {
  create(entity: string): FerryObject;
  set(object: FerryObject, member: string, value: unknown): void;
  get(object: FerryObject, member: string): unknown;
  rollback(object: FerryObject): void;
  commit(objects: FerryObject | FerryObject[]): Promise<void>;
  delete(object: FerryObject): Promise<Deletion>;
  find(entity: string, id: string): Promise<FerryObject | null>;
  query(entity: string, constraint?: string | null, options?: SdkQueryOptions): Promise<FerryObject[]>;
  watch(
    entity: string,
    constraint: string | null | undefined,
    options: SdkQueryOptions,
    callback: (objects: FerryObject[]) => void,
  ): Watch;
  pendingObjects(): Promise<PendingObject[]>;
  status(): Promise<DeviceStatus>;
  attachFile(object: FerryObject, content: Blob, fileName: string): Promise<void>;
  readFile(object: FerryObject): Promise<Blob | null>;
}

/** The calls of the SDK's sync engine the app makes (`SyncEngine` and `WorkerSyncEngine` have them). */
export interface DeviceEngine {
  readonly isSyncing: boolean;
  signIn(user: string, password: string): Promise<string>;
  sync(options?: SyncOptions): Promise<SdkSyncReport>;
  startLive(callbacks?: LiveCallbacks): void;
  stopLive(): Promise<void>;
}

/** Opens the device database for a server: the SDK's database and engine. */
export type Connect = (server: string) => Promise<{ db: DeviceDatabase; engine: DeviceEngine }>;

export class FieldDevice implements FieldService {
  private db: DeviceDatabase | null = null;
  private engine: DeviceEngine | null = null;
  private readonly watches = new Map<number, { close(): void }>();
  private abort: AbortController | null = null;
  private live = false;
  /** What each object was, by "entity/id", so a rejection can say which object it was. */
  private readonly labels = new Map<string, string>();

  constructor(
    private readonly connect: Connect,
    private readonly emit: (event: ServiceEvent) => void,
  ) {}

  async open(server: string): Promise<DeviceState> {
    if (typeof server !== "string" || server === "") {
      throw new FerryError("invalid-argument", "open takes the server's address (http://… or https://…)");
    }
    if (this.db === null) {
      const { db, engine } = await this.connect(server);
      this.db = db;
      this.engine = engine;
    }
    return await this.state();
  }

  private get database(): DeviceDatabase {
    if (this.db === null) throw new FerryError("closed", "the device database is not open yet");
    return this.db;
  }

  private get syncEngine(): DeviceEngine {
    if (this.engine === null) throw new FerryError("closed", "the device database is not open yet");
    return this.engine;
  }

  async state(): Promise<DeviceState> {
    const status = await this.database.status();
    return {
      pendingChanges: status.pendingChanges,
      user: status.user ?? null,
      server: status.server ?? null,
      modelVersion: status.modelVersion,
      lastSync: status.lastSync?.at ?? null,
      fullSyncDue: status.fullSyncDue !== null,
    };
  }

  async signIn(user: string, password: string): Promise<{ userId: string; roles: string[] }> {
    const userId = await this.syncEngine.signIn(user, password);
    const { roles } = await this.database.status();
    return { userId, roles };
  }

  async find(entity: string, id: string): Promise<Item | null> {
    const object = await this.database.find(entity, id);
    return object === null ? null : item(object);
  }

  async query(entity: string, constraint: string, options: QueryOptions): Promise<Item[]> {
    const objects = await this.database.query(entity, constraint === "" ? null : constraint, options);
    return objects.map(item);
  }

  async watch(watch: number, entity: string, constraint: string, options: QueryOptions): Promise<void> {
    if (this.watches.has(watch)) throw new FerryError("invalid-argument", `watch ${watch} is already running`);
    const handle = this.database.watch(entity, constraint === "" ? null : constraint, options, (objects: FerryObject[]) => {
      this.emit({ type: "watch", watch, items: objects.map(item) });
    });
    this.watches.set(watch, handle);
  }

  async unwatch(watch: number): Promise<void> {
    this.watches.get(watch)?.close();
    this.watches.delete(watch);
  }

  async save(changes: Change[]): Promise<Item[]> {
    if (!Array.isArray(changes) || changes.length === 0) {
      throw new FerryError("invalid-argument", "save takes at least one change");
    }
    const db = this.database;
    const objects: FerryObject[] = [];
    try {
      for (const change of changes) {
        if (change.id === undefined) {
          objects.push(db.create(change.entity));
        } else {
          const found = await db.find(change.entity, change.id);
          if (found === null) {
            throw new FerryError("invalid-argument", `${change.entity} ${change.id} is not on this device`, {
              entity: change.entity,
            });
          }
          objects.push(found);
        }
      }
      changes.forEach((change, index) => {
        const object = objects[index] as FerryObject;
        for (const [member, given] of Object.entries(change.values)) {
          const value = resolve(given, objects, member);
          // Only changed members are set, so a form saved whole sends only what it changed.
          if (!sameValue(db.get(object, member) as Value, value)) db.set(object, member, value);
        }
      });
      for (const [index, change] of changes.entries()) {
        if (change.file !== undefined) {
          await db.attachFile(objects[index] as FerryObject, change.file.blob, change.file.name);
        }
      }
      await db.commit(objects);
    } catch (error) {
      // Nothing of a refused save stays behind in the objects.
      for (const object of objects) db.rollback(object);
      throw error;
    }
    for (const object of objects) this.labels.set(`${object.entity}/${object.id}`, label(object));
    return objects.map(item);
  }

  async remove(entity: string, id: string): Promise<string> {
    const object = await this.database.find(entity, id);
    if (object === null) throw new FerryError("invalid-argument", `${entity} ${id} is not on this device`, { entity });
    return await this.database.delete(object);
  }

  async readFile(entity: string, id: string): Promise<Blob | null> {
    const object = await this.database.find(entity, id);
    if (object === null) return null;
    return await this.database.readFile(object);
  }

  async sync(): Promise<SyncReport> {
    const engine = this.syncEngine;
    await this.rememberPending();
    const deadline = Date.now() + BUSY_WAIT_MS_MAX;
    for (;;) {
      // A live sync may be running: wait for it to end, then sync again for what came since.
      while (engine.isSyncing && Date.now() < deadline) await sleep(BUSY_POLL_MS);
      const abort = new AbortController();
      this.abort = abort;
      try {
        const report = await engine.sync({
          mode: "all",
          signal: abort.signal,
          onProgress: (progress) => this.emit({ type: "progress", progress }),
        });
        return this.labelled(report);
      } catch (error) {
        if (error instanceof FerryError && error.kind === "already-running" && Date.now() < deadline) continue;
        throw error;
      } finally {
        if (this.abort === abort) this.abort = null;
      }
    }
  }

  async cancelSync(): Promise<void> {
    this.abort?.abort();
  }

  async startLive(): Promise<void> {
    if (this.live) return;
    this.live = true;
    this.syncEngine.startLive({
      onSync: (report) => {
        this.emit({ type: "synced", report: this.labelled(report), origin: "live" });
      },
      onError: (error) => {
        this.emit({ type: "live-error", error: { message: messageOf(error), kind: kindOf(error) } });
      },
      onState: (state) => this.emit({ type: "live-state", state }),
    });
  }

  async stopLive(): Promise<void> {
    if (!this.live) return;
    this.live = false;
    await this.syncEngine.stopLive();
  }

  /** Notes what each object waiting for upload is, so a rejection of it can name it. */
  private async rememberPending(): Promise<void> {
    const db = this.database;
    for (const pending of await db.pendingObjects()) {
      const key = `${pending.entity}/${pending.id}`;
      if (this.labels.has(key)) continue;
      const object = await db.find(pending.entity, pending.id);
      if (object !== null) this.labels.set(key, label(object));
    }
  }

  private labelled(report: SyncReport): SyncReport {
    return {
      ...report,
      rejected: report.rejected.map((rejection: Rejection) => {
        const known = this.labels.get(`${rejection.entity}/${rejection.id}`);
        return known === undefined ? rejection : { ...rejection, label: known };
      }),
    };
  }
}

/** An object as the page sees it. */
function item(object: FerryObject): Item {
  return { entity: object.entity, id: object.id, values: { ...(object.values as Record<string, Value>) } };
}

/** A value given to a save, with references to new objects of the same save made ids. */
function resolve(given: Value | NewObjectRef, objects: FerryObject[], member: string): Value {
  if (given !== null && typeof given === "object") {
    const target = objects[given.newObject];
    if (target === undefined) {
      throw new FerryError("invalid-argument", `\`${member}\` refers to change ${given.newObject}, which this save lacks`, {
        member,
      });
    }
    return target.id;
  }
  return given;
}

function sameValue(current: Value | undefined, next: Value): boolean {
  return JSON.stringify(current ?? null) === JSON.stringify(next);
}

/** What an object is, in words. */
function label(object: FerryObject): string {
  const values = object.values as Record<string, Value>;
  const shown = (member: string) => (values[member] === null || values[member] === undefined ? "" : String(values[member]));
  switch (object.entity) {
    case WORK_ORDER:
      return `Work order #${shown("Number")} ${shown("Title")}`.trim();
    case VISIT:
      return `Visit started ${shown("StartedAt")}`;
    case PHOTO:
      return `Photo ${shown("FileName") || shown("Caption")}`.trim();
    case FEEDBACK:
      return `Feedback “${shown("Message").slice(0, 40)}”`;
    case SITE:
      return `Site ${shown("Name")}`;
    default:
      return `${object.entity} ${object.id}`;
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function kindOf(error: unknown): string | null {
  return error instanceof FerryError ? error.kind : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
