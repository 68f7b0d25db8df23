// Drafts of open forms, kept in localStorage as the user types, so uncommitted edits survive a
// reload (while offline too). A draft is dropped once its form is committed or discarded.

const PREFIX = "ferry-field:draft:";

/** A form's field values by field name. */
export type Draft = Record<string, string>;

/** The draft kept for a form, or null. */
export function loadDraft(form: string): Draft | null {
  const raw = localStorage.getItem(PREFIX + form);
  if (raw === null) return null;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) {
      return Object.fromEntries(
        Object.entries(parsed).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
      );
    }
  } catch {
    // A damaged draft is dropped below, as if there were none.
  }
  localStorage.removeItem(PREFIX + form);
  return null;
}

/** Keeps a form's current field values. */
export function saveDraft(form: string, draft: Draft): void {
  localStorage.setItem(PREFIX + form, JSON.stringify(draft));
}

/** Drops a form's draft. */
export function dropDraft(form: string): void {
  localStorage.removeItem(PREFIX + form);
}

/**
 * Keeps a form's draft up to date: restores a kept draft into its fields (by `name`) and saves
 * the fields at every input. Returns true when a draft was restored. File inputs are left out:
 * their contents cannot be kept.
 */
export function keepDraft(form: string, element: HTMLFormElement): boolean {
  const draft = loadDraft(form);
  const fields = () =>
    Array.from(element.elements).filter(
      (control): control is HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement =>
        (control instanceof HTMLInputElement && control.type !== "file") ||
        control instanceof HTMLSelectElement ||
        control instanceof HTMLTextAreaElement,
    );
  if (draft !== null) {
    for (const control of fields()) {
      if (control.name in draft) control.value = draft[control.name] ?? "";
    }
  }
  element.addEventListener("input", () => {
    saveDraft(form, Object.fromEntries(fields().filter((c) => c.name !== "").map((c) => [c.name, c.value])));
  });
  return draft !== null;
}
