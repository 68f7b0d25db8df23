// What the screens ask of the device: the operations of the field app on the SDK (see
// device.ts), and the events it tells them unasked (watched results, sync progress, live
// mode). Every value is plain data, and every operation is async.

import type { Progress, SyncReport as SdkSyncReport } from "@ferry/sdk";

import type { Item, Value } from "../model";

/** The device's state, as the status bar shows it. */
export interface DeviceState {
  /** Objects with committed changes not yet uploaded. */
  pendingChanges: number;
  /** The signed-in user's id, or null before the first sign-in. */
  user: string | null;
  /** The server the device signed in to. */
  server: string | null;
  modelVersion: string;
  /** When the last sync ended (ISO text), or null. */
  lastSync: string | null;
  /** True when the next sync will be a full one. */
  fullSyncDue: boolean;
}

/** One object a save writes: an existing one by id, or a new one (no id). */
export interface Change {
  entity: string;
  /** The object to change; absent for a new object. */
  id?: string;
  /**
   * Member values to set. A value `{ newObject: n }` stands for the id of the n-th new object
   * of the same save, so a visit and its photo are committed together.
   */
  values: Record<string, Value | NewObjectRef>;
  /** A file content to attach (file entities only). */
  file?: { blob: Blob; name: string };
}

/** The id of another object created in the same save, by its index in the save's changes. */
export interface NewObjectRef {
  newObject: number;
}

/** Query options: sort order and paging, as the SDK takes them. */
export interface QueryOptions {
  sort?: Array<[string, "asc" | "desc"]>;
  limit?: number;
  offset?: number;
}

/** Progress of a running sync: its phase, the entity being downloaded, objects and bytes done. */
export type SyncProgress = Progress;

/** A change the server refused, with its reason. */
export interface Rejection {
  entity: string;
  id: string;
  reason: string;
  /** What the object was, as the device knew it before the sync ("Work order #7 Pump"). */
  label?: string;
}

/** What a sync did, with each rejected change named as the device knew it. */
export interface SyncReport extends Omit<SdkSyncReport, "rejected"> {
  rejected: Rejection[];
}

/** An error as an event carries it: its message, and the SDK's kind when it had one. */
export interface ServiceErrorData {
  message: string;
  kind: string | null;
}

/** Events the device tells the screens without being asked. */
export type ServiceEvent =
  | { type: "watch"; watch: number; items: Item[] }
  | { type: "progress"; progress: SyncProgress }
  | { type: "synced"; report: SyncReport; origin: "live" | "manual" }
  | { type: "live-state"; state: "connected" | "disconnected" }
  | { type: "live-error"; error: ServiceErrorData };

/** The operations of the device. */
export interface FieldService {
  /** Opens the device database (creating it on first start) and reports the device's state. */
  open(server: string): Promise<DeviceState>;
  state(): Promise<DeviceState>;
  /** Signs in (the previous user's data leaves the device); gives the user's id and roles. */
  signIn(user: string, password: string): Promise<{ userId: string; roles: string[] }>;
  find(entity: string, id: string): Promise<Item | null>;
  query(entity: string, constraint: string, options: QueryOptions): Promise<Item[]>;
  /**
   * Starts watching a query under a number the page chose; its results (now, then after each
   * change) arrive as `watch` events carrying that number.
   */
  watch(watch: number, entity: string, constraint: string, options: QueryOptions): Promise<void>;
  unwatch(watch: number): Promise<void>;
  /** Sets the values of each change and commits them all in one transaction. */
  save(changes: Change[]): Promise<Item[]>;
  /** Deletes an object: "discarded", "removed" or "recorded" (for the next sync). */
  remove(entity: string, id: string): Promise<string>;
  /** A file object's content, or null when it is not on the device. */
  readFile(entity: string, id: string): Promise<Blob | null>;
  /** Synchronizes every entity, reporting progress as `progress` events. */
  sync(): Promise<SyncReport>;
  /** Cancels the sync in progress, if any. */
  cancelSync(): Promise<void>;
  startLive(): Promise<void>;
  stopLive(): Promise<void>;
}
