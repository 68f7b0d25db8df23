// The field-service model as the app uses it: entity and member names, the work order statuses,
// and the shapes of the objects the screens show. The model file itself is bundled at build time
// (scripts/copy-model.mjs) so the device database can be opened offline.

import modelText from "./generated/field_service.toml?raw";

/** The model file text the device database is opened with. */
export const MODEL_TEXT: string = modelText;

export const WORK_ORDER = "Field.WorkOrder";
export const VISIT = "Field.Visit";
export const PHOTO = "Field.Photo";
export const FEEDBACK = "Field.Feedback";
export const SITE = "Field.Site";

// Associations, by the full names the SDK keys object values with.
export const ORDER_SITE = "Field.WorkOrder_Site";
export const ORDER_ASSIGNEE = "Field.WorkOrder_AssignedTo";
export const VISIT_ORDER = "Field.Visit_WorkOrder";
export const VISIT_TECHNICIAN = "Field.Visit_Technician";
export const PHOTO_VISIT = "Field.Photo_Visit";
export const FEEDBACK_ORDER = "Field.Feedback_WorkOrder";

/** The statuses of a work order, in the order a technician works through them. */
export const STATUSES = ["Open", "InProgress", "Done", "Closed"] as const;
export type Status = (typeof STATUSES)[number];

/** How a status reads on screen. */
export const STATUS_LABELS: Record<Status, string> = {
  Open: "Open",
  InProgress: "In progress",
  Done: "Done",
  Closed: "Closed",
};

/** A member value in the app's JSON form (as the wire carries it). */
export type Value = string | number | boolean | null;

/** An object as the page sees it: its entity, id and committed member values. */
export interface Item {
  entity: string;
  id: string;
  values: Record<string, Value>;
}

/** A string member of an object, or "" when empty. */
export function text(item: Item, member: string): string {
  const value = item.values[member];
  return value === null || value === undefined ? "" : String(value);
}

/** The rank of a work order in a technician's list: open ones first, closed ones last. */
export function statusRank(status: string): number {
  const rank = STATUSES.indexOf(status as Status);
  return rank < 0 ? STATUSES.length : rank;
}

/**
 * Orders work orders for a technician: by status (open first), then by due date (soonest
 * first, those without one after), then by number.
 */
export function byUrgency(a: Item, b: Item): number {
  const status = statusRank(text(a, "Status")) - statusRank(text(b, "Status"));
  if (status !== 0) return status;
  const dueA = text(a, "DueDate");
  const dueB = text(b, "DueDate");
  if (dueA !== dueB) {
    if (dueA === "") return 1;
    if (dueB === "") return -1;
    return dueA < dueB ? -1 : 1;
  }
  return Number(a.values.Number ?? 0) - Number(b.values.Number ?? 0);
}
