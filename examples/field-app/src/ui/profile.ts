// The profile panel: the signed-in user's id (which a planner needs to assign work), the
// device's sync state, the view to work in, and signing in as someone else.

import type { View } from "../store/preferences";
import type { Context, Screen } from "./context";
import { h, replace } from "./dom";
import { formatDateTime } from "./format";

export function profile(cx: Context): Screen {
  return {
    title: "Profile",
    render(main) {
      const state = cx.state();
      const copy = h("button", { type: "button", id: "copy-user-id" }, "Copy");
      copy.addEventListener("click", () => {
        navigator.clipboard
          .writeText(cx.user)
          .then(() => cx.announce("User id copied."))
          .catch(() => cx.announce("Copying is not allowed here; select the id instead."));
      });
      const views: Array<[View, string]> = [
        ["technician", "Technician: my work orders, visits and feedback"],
        ["planner", "Planner: every work order, creating and assigning them"],
      ];
      const choice = h(
        "fieldset",
        { class: "choice" },
        h("legend", {}, "I work as"),
        views.map(([view, label]) => {
          const input = h("input", {
            type: "radio",
            name: "profile-view",
            id: `profile-view-${view}`,
            value: view,
            checked: cx.view === view,
            onchange: () => cx.setView(view),
          });
          return h("label", { for: input.id }, input, ` ${label}`);
        }),
      );
      replace(
        main,
        h("h1", { id: "screen-title" }, "Profile"),
        h(
          "dl",
          { class: "facts card" },
          h("dt", {}, "User id"),
          h("dd", {}, h("code", { id: "profile-user-id" }, cx.user), " ", copy),
          h("dt", {}, "Server"),
          h("dd", {}, state.server ?? "—"),
          h("dt", {}, "Model version"),
          h("dd", {}, h("code", {}, state.modelVersion)),
          h("dt", {}, "Changes waiting for upload"),
          h("dd", {}, String(state.pendingChanges)),
          h("dt", {}, "Last sync"),
          h("dd", {}, state.lastSync ? formatDateTime(state.lastSync) : "never"),
          h("dt", {}, "Next sync"),
          h("dd", {}, state.fullSyncDue ? "full (every entity again)" : "incremental"),
        ),
        h(
          "p",
          { class: "hint" },
          "Planners assign work orders by this user id: tell it to your planner.",
        ),
        h("form", { class: "card", "aria-label": "View" }, choice),
        h(
          "p",
          {},
          h("button", { type: "button", id: "switch-user", onclick: () => cx.switchUser() }, "Sign in as another user"),
        ),
      );
    },
  };
}
