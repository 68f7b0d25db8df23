// Dates and times between the model's UTC text ("2026-11-23T10:00:00Z"), the local time a
// `datetime-local` input shows, and what a person reads on screen.

const readable = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** A UTC date-time as a person reads it, in local time; "" when empty. */
export function formatDateTime(iso: string): string {
  if (iso === "") return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : readable.format(date);
}

/** A UTC date-time as the value of a `datetime-local` input (local time, to the minute). */
export function toLocalInput(iso: string): string {
  if (iso === "") return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}` +
    `T${pad(date.getHours())}:${pad(date.getMinutes())}`
  );
}

/** The value of a `datetime-local` input as UTC text, or null when the input is empty. */
export function fromLocalInput(value: string): string | null {
  if (value === "") return null;
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return null;
  return utc(date);
}

/** A moment as the model's UTC text, to the second. */
export function utc(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** How long ago a moment was, in words ("just now", "5 min ago"), or its date when long ago. */
export function ago(iso: string, now: Date = new Date()): string {
  const seconds = Math.round((now.getTime() - new Date(iso).getTime()) / 1000);
  if (Number.isNaN(seconds)) return iso;
  if (seconds < 45) return "just now";
  if (seconds < 60 * 60) return `${Math.round(seconds / 60)} min ago`;
  return formatDateTime(iso);
}

/** An id shortened for tight columns: its first eight characters. */
export function shortId(id: string): string {
  return id.length > 8 ? `${id.slice(0, 8)}…` : id;
}
