// What every screen is given: the device, the signed-in user, navigation, and watched queries
// that end when the screen is left.

import type { Item } from "../model";
import type { DeviceState, FieldService, QueryOptions } from "../service/api";
import type { View } from "../store/preferences";

/** A screen of the app: it fills the main region and lets go of what it watches when left. */
export interface Screen {
  /** The screen's main heading, also the document title. */
  title: string;
  /** Fills `main`; may be called once per visit of the screen. */
  render(main: HTMLElement): Promise<void> | void;
}

/** The services a screen may use. */
export interface Context {
  service: FieldService;
  /** The signed-in user's id. */
  user: string;
  /** The view the user works in. */
  view: View;
  /** The device's state as last read. */
  state(): DeviceState;
  /** Goes to another screen, by its hash route (`#/orders/ID`). */
  navigate(route: string): void;
  /**
   * Watches a query for as long as the current screen is shown: `onItems` gets the result now,
   * then after every change. The function returned ends the watch sooner.
   */
  watch(
    entity: string,
    constraint: string,
    options: QueryOptions,
    onItems: (items: Item[]) => void,
  ): Promise<() => void>;
  /** Reads the device's state again (after a commit) and updates the status bar. */
  refresh(): Promise<void>;
  /** Shows a short message to the user (and to screen readers). */
  announce(message: string): void;
  /** Switches the view the user works in. */
  setView(view: View): void;
  /** Shows the sign-in screen, to sign in as another user. */
  switchUser(): void;
}

/** An error's message for the user. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error !== null && typeof error === "object" && "message" in error) {
    return String((error as { message: unknown }).message);
  }
  return String(error);
}

/** The SDK's kind of an error (`unreachable`, `validation`, …), when it has one. */
export function kindOf(error: unknown): string | null {
  if (error !== null && typeof error === "object" && "kind" in error) {
    const kind = (error as { kind: unknown }).kind;
    return typeof kind === "string" ? kind : null;
  }
  return null;
}
