// From form controls to member values, and the small pieces every form shares: a status line,
// an error line, and the note shown when a kept draft was restored.

import type { Value } from "../model";
import { dropDraft } from "../store/drafts";
import { h } from "./dom";
import { fromLocalInput } from "./format";

/** A text member's value: null when left empty. */
export function textValue(raw: string): Value {
  return raw.trim() === "" ? null : raw;
}

/**
 * An integer member's value: null when empty; text that is not a whole number is passed on
 * as it is, so the device refuses it with an error that names the member.
 */
export function integerValue(raw: string): Value {
  const trimmed = raw.trim();
  if (trimmed === "") return null;
  return /^-?\d+$/.test(trimmed) ? Number(trimmed) : trimmed;
}

/** A date-time member's value from a `datetime-local` control: UTC text, or null when empty. */
export function dateTimeValue(raw: string): Value {
  if (raw.trim() === "") return null;
  return fromLocalInput(raw) ?? raw;
}

/** The line under a form where its errors appear (announced at once). */
export function errorLine(): HTMLParagraphElement {
  return h("p", { class: "error", role: "alert" });
}

/**
 * The note shown above a form whose uncommitted edits were restored from a draft, with a
 * button that drops the draft and shows the committed values again.
 */
export function draftNote(form: string, restored: boolean, onDiscard: () => void): HTMLElement | null {
  if (!restored) return null;
  return h(
    "p",
    { class: "notice draft-note" },
    "Your unsaved changes were restored. ",
    h(
      "button",
      {
        type: "button",
        class: "link",
        onclick: () => {
          dropDraft(form);
          onDiscard();
        },
      },
      "Discard them",
    ),
  );
}

/** A busy button: disabled, with other text, until the work ends. */
export async function whileBusy<T>(button: HTMLButtonElement, text: string, work: () => Promise<T>): Promise<T> {
  const idle = button.textContent;
  button.disabled = true;
  button.textContent = text;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.textContent = idle;
  }
}
