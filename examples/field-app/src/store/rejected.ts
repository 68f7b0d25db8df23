// Changes the server rejected, kept in localStorage per user until the user dismisses them, so
// the reasons stay readable after a reload or a later sync.

import type { Rejection } from "../service/api";

const PREFIX = "ferry-field:rejected:";

/** A rejected change as the app keeps it. */
export interface KeptRejection extends Rejection {
  /** When the sync that reported it ended (ISO text). */
  at: string;
}

function key(user: string): string {
  return PREFIX + user;
}

/** The rejected changes kept for a user, oldest first. */
export function loadRejected(user: string): KeptRejection[] {
  const raw = localStorage.getItem(key(user));
  if (raw === null) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (Array.isArray(parsed)) return parsed.filter(isKept);
  } catch {
    // A damaged list is dropped, as if there were none.
  }
  localStorage.removeItem(key(user));
  return [];
}

/** Adds a sync's rejected changes; a change rejected again replaces its earlier record. */
export function addRejected(user: string, rejected: Rejection[], at: string): KeptRejection[] {
  if (rejected.length === 0) return loadRejected(user);
  const fresh = new Set(rejected.map((r) => `${r.entity}/${r.id}`));
  const kept = loadRejected(user).filter((r) => !fresh.has(`${r.entity}/${r.id}`));
  const all = [...kept, ...rejected.map((r) => ({ ...r, at }))];
  localStorage.setItem(key(user), JSON.stringify(all));
  return all;
}

/** Forgets one rejected change. */
export function dismissRejected(user: string, entity: string, id: string): KeptRejection[] {
  const all = loadRejected(user).filter((r) => !(r.entity === entity && r.id === id));
  localStorage.setItem(key(user), JSON.stringify(all));
  return all;
}

function isKept(value: unknown): value is KeptRejection {
  if (value === null || typeof value !== "object") return false;
  const record = value as Record<string, unknown>;
  return ["entity", "id", "reason", "at"].every((name) => typeof record[name] === "string");
}
