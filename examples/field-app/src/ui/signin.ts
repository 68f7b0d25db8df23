// The sign-in screen: user name and password, sent to the server once; the device database
// keeps the session, so later starts (offline too) go straight to the work.

import type { FieldService } from "../service/api";
import type { View } from "../store/preferences";
import { kindOf, messageOf } from "./context";
import { field, h, replace } from "./dom";

/** What a successful sign-in tells the app. */
export interface SignedIn {
  userId: string;
  /** The view to open, as chosen on the sign-in form. */
  view: View;
}

/**
 * Renders the sign-in form into `main`; `onSignedIn` is called once the server accepted the
 * user. `previousUser` is shown when another user is signed in on this device.
 */
export function renderSignIn(
  main: HTMLElement,
  service: FieldService,
  previousUser: string | null,
  onSignedIn: (signedIn: SignedIn) => void,
): void {
  const user = h("input", {
    id: "signin-user",
    name: "user",
    autocomplete: "username",
    required: true,
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    id: "signin-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
  });
  const error = h("p", { class: "error", role: "alert" });
  const submit = h("button", { type: "submit", class: "primary" }, "Sign in");

  const form = h(
    "form",
    { class: "card narrow", "aria-labelledby": "screen-title" },
    field("User name", user),
    field("Password", password),
    error,
    h("div", { class: "actions" }, submit),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit.disabled = true;
    submit.textContent = "Signing in…";
    error.textContent = "";
    // The view follows the roles the server gave: planners plan, everyone else works orders.
    service
      .signIn(user.value.trim(), password.value)
      .then(({ userId, roles }) => {
        const view: View = roles.includes("Planner") ? "planner" : "technician";
        return onSignedIn({ userId, view });
      })
      .catch((failure: unknown) => {
        error.textContent = signInProblem(failure);
        submit.disabled = false;
        submit.textContent = "Sign in";
        password.select();
      });
  });

  replace(
    main,
    h("h1", { id: "screen-title" }, "Sign in"),
    h(
      "p",
      { class: "lead" },
      "Sign in once while online; your work orders then stay on this device and work offline.",
    ),
    previousUser
      ? h(
          "p",
          { class: "notice" },
          `This device holds the data of user ${previousUser}. Signing in as someone else first uploads that user's changes, then replaces their data.`,
        )
      : null,
    form,
  );
  user.focus();
}

/** Why a sign-in failed, in the words of the sign-in form. */
function signInProblem(failure: unknown): string {
  switch (kindOf(failure)) {
    case "not-signed-in":
      return "The server refused this user name and password (or the user is disabled). Check them and try again.";
    case "unreachable":
      return "The server cannot be reached. Signing in needs the network once; afterwards the app works offline.";
    default:
      return messageOf(failure);
  }
}
