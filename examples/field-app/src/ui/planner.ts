// The planner's screens: every work order on the device, a work order created or changed and
// assigned to a technician by user id, the visits technicians recorded, and sites.

import {
  ORDER_SITE,
  ORDER_ASSIGNEE,
  SITE,
  STATUSES,
  STATUS_LABELS,
  VISIT,
  WORK_ORDER,
  text,
  type Item,
  type Value,
} from "../model";
import { dropDraft, keepDraft } from "../store/drafts";
import { loadAssignees, rememberAssignee } from "../store/preferences";
import { messageOf, type Context, type Screen } from "./context";
import { field, h, replace, select } from "./dom";
import { formatDateTime, shortId, toLocalInput } from "./format";
import { dateTimeValue, draftNote, errorLine, integerValue, textValue, whileBusy } from "./forms";
import { notOnDevice, orderLabel, statusBadge } from "./technician";

/** Every work order on the planner's device, newest number first, with a status filter. */
export function plannerList(cx: Context): Screen {
  return {
    title: "Work orders",
    async render(main) {
      const body = h("div", { class: "list-body" }, h("p", { class: "muted" }, "Loading…"));
      const filter = select(
        { id: "plan-filter", name: "status" },
        [["", "All statuses"], ...STATUSES.map((s): [string, string] => [s, STATUS_LABELS[s]])],
        sessionStorage.getItem("ferry-field:plan-filter") ?? "",
      );
      replace(
        main,
        h(
          "div",
          { class: "heading-row" },
          h("h1", { id: "screen-title" }, "Work orders"),
          h("a", { class: "button primary", href: "#/plan/new", id: "new-order" }, "New work order"),
        ),
        h("div", { class: "toolbar" }, field("Show", filter)),
        body,
        sitesSection(cx),
      );
      let sites = new Map<string, string>();
      let orders: Item[] | null = null;
      const showOrders = () => {
        if (orders !== null) replace(body, plannerTable(orders, sites));
      };
      await cx.watch(SITE, "", {}, (items) => {
        sites = new Map(items.map((site) => [site.id, text(site, "Name")]));
        showOrders();
      });
      let close = () => {};
      const show = async () => {
        close();
        sessionStorage.setItem("ferry-field:plan-filter", filter.value);
        const constraint = filter.value === "" ? "" : `[Status = '${filter.value}']`;
        close = await cx.watch(WORK_ORDER, constraint, { sort: [["Number", "desc"]] }, (items) => {
          orders = items;
          showOrders();
        });
      };
      filter.addEventListener("change", () => void show());
      await show();
    },
  };
}

function plannerTable(orders: Item[], sites: Map<string, string>): HTMLElement {
  if (orders.length === 0) {
    return h("p", { class: "empty" }, "No work orders here yet. Create one, or sync to bring them.");
  }
  return h(
    "table",
    { class: "orders" },
    h("caption", { class: "visually-hidden" }, "Work orders, newest number first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Number", "Title", "Status", "Priority", "Due", "Site", "Assigned to"].map((name) =>
          h("th", { scope: "col" }, name),
        ),
      ),
    ),
    h(
      "tbody",
      {},
      orders.map((order) =>
        h(
          "tr",
          { "data-id": order.id },
          h("td", { "data-label": "Number" }, text(order, "Number")),
          h(
            "td",
            { "data-label": "Title", class: "title" },
            h("a", { href: `#/plan/orders/${order.id}` }, text(order, "Title") || "(no title)"),
          ),
          h("td", { "data-label": "Status" }, statusBadge(text(order, "Status"))),
          h("td", { "data-label": "Priority" }, text(order, "Priority")),
          h("td", { "data-label": "Due" }, formatDateTime(text(order, "DueDate")) || "—"),
          h("td", { "data-label": "Site" }, sites.get(text(order, ORDER_SITE)) ?? "—"),
          h(
            "td",
            { "data-label": "Assigned to", title: text(order, ORDER_ASSIGNEE) },
            text(order, ORDER_ASSIGNEE) ? shortId(text(order, ORDER_ASSIGNEE)) : "—",
          ),
        ),
      ),
    ),
  );
}

/** Sites on the device, and a form to add one. */
function sitesSection(cx: Context): HTMLElement {
  const list = h("div", {});
  const name = h("input", { id: "site-name", name: "Name", required: true, maxlength: 200 });
  const address = h("input", { id: "site-address", name: "Address", maxlength: 400 });
  const error = errorLine();
  const add = h("button", { type: "submit" }, "Add site");
  const form = h(
    "form",
    { class: "card inline-form", id: "site-form", "aria-label": "Add a site" },
    field("Site name", name),
    field("Address", address),
    error,
    h("div", { class: "actions" }, add),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    void whileBusy(add, "Adding…", () =>
      cx.service.save([{ entity: SITE, values: { Name: name.value, Address: textValue(address.value) } }]),
    )
      .then(async () => {
        form.reset();
        await cx.refresh();
        cx.announce("Site saved on this device.");
      })
      .catch((failure: unknown) => {
        error.textContent = messageOf(failure);
      });
  });
  void cx.watch(SITE, "", { sort: [["Name", "asc"]] }, (sites) =>
    replace(
      list,
      sites.length === 0
        ? h("p", { class: "empty" }, "No sites yet.")
        : h(
            "ul",
            { class: "items" },
            sites.map((site) =>
              h("li", {}, text(site, "Name"), text(site, "Address") ? h("span", { class: "muted" }, ` — ${text(site, "Address")}`) : null),
            ),
          ),
    ),
  );
  return h(
    "section",
    { "aria-labelledby": "sites-title", class: "sites" },
    h("h2", { id: "sites-title" }, "Sites"),
    list,
    form,
  );
}

/** Creating a work order (`id` absent) or changing one, and its visits. */
export function plannerOrder(cx: Context, id: string | null): Screen {
  const screen: Screen = {
    title: id === null ? "New work order" : "Work order",
    async render(main) {
      const order = id === null ? null : await cx.service.find(WORK_ORDER, id);
      if (id !== null && order === null) {
        replace(main, ...notOnDevice("Work order", "#/plan"));
        return;
      }
      const title = order ? orderLabel(order) : "New work order";
      screen.title = title;
      const draft = order ? `plan:${order.id}` : "plan:new";
      const sites = await cx.service.query(SITE, "", { sort: [["Name", "asc"]] });
      const orders = await cx.service.query(WORK_ORDER, "", {});
      const value = (member: string, fallback = "") => (order ? text(order, member) : fallback);

      const number = h("input", {
        id: "order-number",
        name: "Number",
        type: "number",
        min: 1,
        step: 1,
        required: true,
        inputmode: "numeric",
      });
      number.value = value("Number", String(nextNumber(orders)));
      const titleInput = h("input", { id: "order-title", name: "Title", required: true, maxlength: 200 });
      titleInput.value = value("Title");
      const priority = select(
        { id: "order-priority", name: "Priority" },
        [1, 2, 3, 4, 5].map((n): [string, string] => [String(n), n === 1 ? "1 (highest)" : n === 5 ? "5 (lowest)" : String(n)]),
        value("Priority", "3"),
      );
      const due = h("input", { id: "order-due", name: "DueDate", type: "datetime-local" });
      due.value = toLocalInput(value("DueDate"));
      const status = select(
        { id: "order-status", name: "Status" },
        STATUSES.map((s) => [s, STATUS_LABELS[s]]),
        value("Status", "Open"),
      );
      const site = select(
        { id: "order-site", name: "WorkOrder_Site" },
        [["", "No site"], ...sites.map((s): [string, string] => [s.id, text(s, "Name")])],
        value(ORDER_SITE),
      );
      const assignee = h("input", {
        id: "order-assignee",
        name: "WorkOrder_AssignedTo",
        list: "assignees",
        autocomplete: "off",
        spellcheck: "false",
        placeholder: "the technician's user id",
      });
      assignee.value = value(ORDER_ASSIGNEE);
      const seen = new Set([
        ...loadAssignees(cx.user),
        ...orders.map((o) => text(o, ORDER_ASSIGNEE)).filter((a) => a !== ""),
      ]);
      const assignees = h(
        "datalist",
        { id: "assignees" },
        [...seen].map((a) => h("option", { value: a })),
      );
      const notes = h("textarea", { id: "order-notes", name: "Notes", rows: 4, maxlength: 2000 });
      notes.value = value("Notes");
      const error = errorLine();
      const save = h("button", { type: "submit", class: "primary" }, order ? "Save work order" : "Create work order");

      const form = h(
        "form",
        { class: "card grid-form", id: "order-form", "aria-labelledby": "screen-title" },
        field("Number", number, "Unique among all work orders."),
        field("Title", titleInput),
        field("Priority", priority),
        field("Due", due),
        field("Status", status),
        field("Site", site),
        h(
          "div",
          { class: "wide" },
          field(
            "Assigned to (technician's user id)",
            assignee,
            "A technician finds their user id on their Profile screen.",
          ),
          assignees,
        ),
        h("div", { class: "wide" }, field("Notes", notes)),
        h("div", { class: "wide" }, error),
        h("div", { class: "actions wide" }, save),
      );
      const restored = keepDraft(draft, form);
      const note = draftNote(draft, restored, () => void screen.render(main));
      if (note) form.prepend(note);
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        error.textContent = "";
        const values: Record<string, Value> = {
          Number: integerValue(number.value),
          Title: textValue(titleInput.value),
          Priority: integerValue(priority.value),
          DueDate: dateTimeValue(due.value),
          Status: status.value,
          [ORDER_SITE]: site.value === "" ? null : site.value,
          [ORDER_ASSIGNEE]: textValue(assignee.value.trim()),
          Notes: textValue(notes.value),
        };
        void whileBusy(save, "Saving…", () =>
          cx.service.save([{ entity: WORK_ORDER, ...(order ? { id: order.id } : {}), values }]),
        )
          .then(async ([saved]) => {
            dropDraft(draft);
            const assigned = values[ORDER_ASSIGNEE];
            if (typeof assigned === "string") rememberAssignee(cx.user, assigned);
            await cx.refresh();
            cx.announce(`Work order ${String(values.Number)} saved on this device.`);
            if (order) void screen.render(main);
            else if (saved) cx.navigate("#/plan");
          })
          .catch((failure: unknown) => {
            error.textContent = messageOf(failure);
          });
      });

      const visits = h("div", {});
      replace(
        main,
        h("p", { class: "back" }, h("a", { href: "#/plan" }, "← Work orders")),
        h("h1", { id: "screen-title" }, title),
        form,
        order
          ? h(
              "section",
              { "aria-labelledby": "visits-title" },
              h("h2", { id: "visits-title" }, "Visits"),
              visits,
            )
          : null,
      );
      if (order) {
        await cx.watch(VISIT, `[Field.Visit_WorkOrder = '${order.id}']`, { sort: [["StartedAt", "desc"]] }, (items) =>
          replace(visits, plannerVisits(items)),
        );
      } else {
        titleInput.focus();
      }
    },
  };
  return screen;
}

function plannerVisits(visits: Item[]): HTMLElement {
  if (visits.length === 0) return h("p", { class: "empty" }, "No visits recorded yet.");
  return h(
    "ul",
    { class: "items" },
    visits.map((visit) =>
      h(
        "li",
        { "data-id": visit.id },
        h("strong", {}, formatDateTime(text(visit, "StartedAt"))),
        text(visit, "EndedAt") ? ` – ${formatDateTime(text(visit, "EndedAt"))}` : "",
        text(visit, "Summary") ? h("p", { class: "summary" }, text(visit, "Summary")) : null,
      ),
    ),
  );
}

/** One more than the highest work order number on the device. */
function nextNumber(orders: Item[]): number {
  return orders.reduce((highest, o) => Math.max(highest, Number(o.values.Number ?? 0)), 0) + 1;
}
