// What the app remembers of a user on this device besides the database: the view they work in
// (technician or planner) and the technicians they assigned work to.

const VIEW = "ferry-field:view:";
const ASSIGNEES = "ferry-field:assignees:";

/** The two ways of working in the app. */
export type View = "technician" | "planner";

/** The view a user chose, or null. */
export function loadView(user: string): View | null {
  const view = localStorage.getItem(VIEW + user);
  return view === "technician" || view === "planner" ? view : null;
}

export function saveView(user: string, view: View): void {
  localStorage.setItem(VIEW + user, view);
}

/** User ids a planner assigned work to before, newest first. */
export function loadAssignees(user: string): string[] {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(ASSIGNEES + user) ?? "[]");
    return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === "string") : [];
  } catch {
    return [];
  }
}

/** Remembers an assignee (at most 50 are kept). */
export function rememberAssignee(user: string, assignee: string): void {
  const all = [assignee, ...loadAssignees(user).filter((id) => id !== assignee)].slice(0, 50);
  localStorage.setItem(ASSIGNEES + user, JSON.stringify(all));
}
