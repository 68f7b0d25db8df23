// The technician's screens: my work orders, a work order's detail (status, notes, visits,
// feedback), and a visit with its photos. Every change is committed to the device database at
// once and uploaded with the next sync; open forms keep drafts so a reload loses nothing.

import {
  VISIT_TECHNICIAN,
  VISIT_ORDER,
  PHOTO_VISIT,
  ORDER_SITE,
  FEEDBACK_ORDER,
  FEEDBACK,
  PHOTO,
  SITE,
  STATUSES,
  STATUS_LABELS,
  VISIT,
  WORK_ORDER,
  byUrgency,
  text,
  type Item,
  type Status,
} from "../model";
import { dropDraft, keepDraft } from "../store/drafts";
import { messageOf, type Context, type Screen } from "./context";
import { field, h, replace, select } from "./dom";
import { formatDateTime, toLocalInput, utc } from "./format";
import { dateTimeValue, draftNote, errorLine, integerValue, textValue, whileBusy } from "./forms";

/** The constraint of the signed-in technician's work orders. */
const MINE = "[Field.WorkOrder_AssignedTo = '[%CurrentUser%]']";

/** A status as a badge. */
export function statusBadge(status: string): HTMLElement {
  const label = STATUS_LABELS[status as Status] ?? status;
  return h("span", { class: `badge status-${status.toLowerCase()}` }, label);
}

/** The names of the sites on the device, by id. */
export async function siteNames(cx: Context): Promise<Map<string, string>> {
  const sites = await cx.service.query(SITE, "", {});
  return new Map(sites.map((site) => [site.id, text(site, "Name")]));
}

/** A work order's number and title, as headings and links show it. */
export function orderLabel(order: Item): string {
  return `#${text(order, "Number")} ${text(order, "Title")}`;
}

/** The technician's work orders, open ones first. */
export function technicianList(cx: Context): Screen {
  return {
    title: "My work orders",
    async render(main) {
      const body = h("div", { class: "list-body" }, h("p", { class: "muted" }, "Loading…"));
      replace(main, h("h1", { id: "screen-title" }, "My work orders"), body);
      // Sites arrive with the same syncs as the work orders: both are watched.
      let sites = new Map<string, string>();
      let orders: Item[] | null = null;
      const show = () => {
        if (orders !== null) replace(body, ordersTable([...orders].sort(byUrgency), sites));
      };
      await cx.watch(SITE, "", {}, (items) => {
        sites = new Map(items.map((site) => [site.id, text(site, "Name")]));
        show();
      });
      await cx.watch(WORK_ORDER, MINE, {}, (items) => {
        orders = items;
        show();
      });
    },
  };
}

function ordersTable(orders: Item[], sites: Map<string, string>): HTMLElement {
  if (orders.length === 0) {
    return h(
      "p",
      { class: "empty" },
      "No work orders on this device yet. Sync to bring your assigned work orders here.",
    );
  }
  return h(
    "table",
    { class: "orders" },
    h("caption", { class: "visually-hidden" }, "My work orders, open ones first"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Number", "Title", "Status", "Due", "Site"].map((name) => h("th", { scope: "col" }, name)),
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
            h("a", { href: `#/orders/${order.id}` }, text(order, "Title") || "(no title)"),
          ),
          h("td", { "data-label": "Status" }, statusBadge(text(order, "Status"))),
          h("td", { "data-label": "Due" }, formatDateTime(text(order, "DueDate")) || "—"),
          h("td", { "data-label": "Site" }, sites.get(text(order, ORDER_SITE)) ?? "—"),
        ),
      ),
    ),
  );
}

/** A work order's detail: status and notes, its visits, and feedback. */
export function orderDetail(cx: Context, id: string): Screen {
  const screen: Screen = {
    title: "Work order",
    async render(main) {
      const order = await cx.service.find(WORK_ORDER, id);
      if (order === null) {
        replace(main, ...notOnDevice("Work order", "#/orders"));
        return;
      }
      screen.title = orderLabel(order);
      const sites = await siteNames(cx);
      const visits = h("div", { class: "visits" });
      const queued = h("div", { class: "queued" });
      replace(
        main,
        h("p", { class: "back" }, h("a", { href: "#/orders" }, "← My work orders")),
        h("h1", { id: "screen-title" }, orderLabel(order)),
        h(
          "dl",
          { class: "facts" },
          h("dt", {}, "Status"),
          h("dd", {}, statusBadge(text(order, "Status"))),
          h("dt", {}, "Due"),
          h("dd", {}, formatDateTime(text(order, "DueDate")) || "—"),
          h("dt", {}, "Site"),
          h("dd", {}, sites.get(text(order, ORDER_SITE)) ?? "—"),
          h("dt", {}, "Priority"),
          h("dd", {}, text(order, "Priority") || "—"),
        ),
        progressForm(cx, order, () => void screen.render(main)),
        h(
          "section",
          { "aria-labelledby": "visits-title" },
          h("h2", { id: "visits-title" }, "Visits"),
          visits,
          h(
            "p",
            {},
            h(
              "a",
              { class: "button", href: `#/orders/${order.id}/visit`, id: "record-visit" },
              "Record a visit",
            ),
          ),
        ),
        h(
          "section",
          { "aria-labelledby": "feedback-title" },
          h("h2", { id: "feedback-title" }, "Feedback"),
          queued,
          feedbackForm(cx, order),
        ),
      );
      await cx.watch(VISIT, `[Field.Visit_WorkOrder = '${order.id}']`, { sort: [["StartedAt", "desc"]] }, (items) =>
        replace(visits, visitList(items)),
      );
      await cx.watch(FEEDBACK, `[Field.Feedback_WorkOrder = '${order.id}']`, {}, (items) =>
        replace(
          queued,
          items.length === 0
            ? null
            : h(
                "p",
                { class: "muted" },
                items.length === 1
                  ? "1 feedback message waits on this device for the next sync."
                  : `${items.length} feedback messages wait on this device for the next sync.`,
              ),
        ),
      );
    },
  };
  return screen;
}

/** The form a technician reports progress with: status and notes. */
function progressForm(cx: Context, order: Item, rerender: () => void): HTMLElement {
  const draft = `order:${order.id}`;
  const status = select(
    { id: "order-status", name: "Status" },
    STATUSES.map((s) => [s, STATUS_LABELS[s]]),
    text(order, "Status"),
  );
  const notes = h("textarea", { id: "order-notes", name: "Notes", rows: 5, maxlength: 2000 });
  notes.value = text(order, "Notes");
  const error = errorLine();
  const save = h("button", { type: "submit", class: "primary" }, "Save progress");
  const revert = h("button", { type: "button" }, "Revert");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "progress-title", id: "progress-form" },
    h("h2", { id: "progress-title" }, "Progress"),
    field("Status", status),
    field("Notes", notes),
    error,
    h("div", { class: "actions" }, save, revert),
  );
  const note = draftNote(draft, keepDraft(draft, form), rerender);
  if (note) form.prepend(note);
  revert.addEventListener("click", () => {
    dropDraft(draft);
    rerender();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    const done = status.value === "Done" || status.value === "Closed";
    void whileBusy(save, "Saving…", () =>
      cx.service.save([
        {
          entity: WORK_ORDER,
          id: order.id,
          values: { Status: status.value, Notes: textValue(notes.value), Completed: done },
        },
      ]),
    )
      .then(async () => {
        dropDraft(draft);
        await cx.refresh();
        cx.announce("Progress saved on this device; it goes to the server with the next sync.");
        rerender();
      })
      .catch((failure: unknown) => {
        error.textContent = messageOf(failure);
      });
  });
  return form;
}

function visitList(visits: Item[]): HTMLElement {
  if (visits.length === 0) return h("p", { class: "empty" }, "No visits recorded yet.");
  return h(
    "ul",
    { class: "items" },
    visits.map((visit) =>
      h(
        "li",
        { "data-id": visit.id },
        h("a", { href: `#/visits/${visit.id}` }, visitLabel(visit)),
        text(visit, "Summary") ? h("span", { class: "muted" }, ` — ${text(visit, "Summary")}`) : null,
      ),
    ),
  );
}

function visitLabel(visit: Item): string {
  const started = formatDateTime(text(visit, "StartedAt"));
  const ended = formatDateTime(text(visit, "EndedAt"));
  return ended ? `Visit ${started} – ${ended}` : `Visit ${started}`;
}

/** The feedback form of a work order: a message and a rating, sent with the next sync. */
function feedbackForm(cx: Context, order: Item): HTMLElement {
  const draft = `feedback:${order.id}`;
  const message = h("textarea", {
    id: "feedback-message",
    name: "Message",
    rows: 4,
    maxlength: 2000,
    required: true,
  });
  const rating = select(
    { id: "feedback-rating", name: "Rating" },
    [["", "No rating"], ...[5, 4, 3, 2, 1].map((n): [string, string] => [String(n), `${n} of 5`])],
    "",
  );
  const error = errorLine();
  const send = h("button", { type: "submit", class: "primary" }, "Send feedback");
  const form = h(
    "form",
    { class: "card", id: "feedback-form", "aria-label": "Feedback on this work order" },
    field("Message", message, "What went well, what did not, what the customer said."),
    field("Rating", rating),
    error,
    h("div", { class: "actions" }, send),
  );
  const restored = keepDraft(draft, form);
  const note = draftNote(draft, restored, () => {
    message.value = "";
    rating.value = "";
    note?.remove();
  });
  if (note) form.prepend(note);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    void whileBusy(send, "Sending…", () =>
      cx.service.save([
        {
          entity: FEEDBACK,
          values: {
            Message: message.value,
            Rating: integerValue(rating.value),
            SubmittedAt: utc(new Date()),
            [FEEDBACK_ORDER]: order.id,
          },
        },
      ]),
    )
      .then(async () => {
        dropDraft(draft);
        message.value = "";
        rating.value = "";
        note?.remove();
        await cx.refresh();
        cx.announce("Feedback saved; it goes to the server with the next sync.");
      })
      .catch((failure: unknown) => {
        error.textContent = messageOf(failure);
      });
  });
  return form;
}

/** Recording a new visit of a work order, with an optional photo. */
export function newVisit(cx: Context, orderId: string): Screen {
  const screen: Screen = {
    title: "Record a visit",
    async render(main) {
      const order = await cx.service.find(WORK_ORDER, orderId);
      if (order === null) {
        replace(main, ...notOnDevice("Work order", "#/orders"));
        return;
      }
      const draft = `visit:new:${order.id}`;
      const form = visitForm(undefined);
      const photo = photoFields("A photo of the work (optional)");
      const error = errorLine();
      const save = h("button", { type: "submit", class: "primary" }, "Save visit");
      form.element.append(photo.element, error, h("div", { class: "actions" }, save));
      const restored = keepDraft(draft, form.element);
      const note = draftNote(draft, restored, () => void screen.render(main));
      if (note) form.element.prepend(note);
      form.element.addEventListener("submit", (event) => {
        event.preventDefault();
        error.textContent = "";
        const file = photo.file();
        void whileBusy(save, "Saving…", () =>
          cx.service.save([
            {
              entity: VISIT,
              values: { ...form.values(), [VISIT_ORDER]: order.id, [VISIT_TECHNICIAN]: cx.user },
            },
            ...(file
              ? [
                  {
                    entity: PHOTO,
                    values: { Caption: textValue(photo.caption.value), [PHOTO_VISIT]: { newObject: 0 } },
                    file: { blob: file, name: file.name },
                  },
                ]
              : []),
          ]),
        )
          .then(async ([visit]) => {
            dropDraft(draft);
            await cx.refresh();
            cx.announce("Visit saved on this device.");
            if (visit) cx.navigate(`#/visits/${visit.id}`);
          })
          .catch((failure: unknown) => {
            error.textContent = messageOf(failure);
          });
      });
      replace(
        main,
        h("p", { class: "back" }, h("a", { href: `#/orders/${order.id}` }, `← ${orderLabel(order)}`)),
        h("h1", { id: "screen-title" }, "Record a visit"),
        h("p", { class: "lead" }, orderLabel(order)),
        form.element,
      );
    },
  };
  return screen;
}

/** A recorded visit: its times and summary, and its photos from the device's file store. */
export function visitDetail(cx: Context, id: string): Screen {
  const urls: string[] = [];
  const screen: Screen = {
    title: "Visit",
    async render(main) {
      const visit = await cx.service.find(VISIT, id);
      if (visit === null) {
        replace(main, ...notOnDevice("Visit", "#/orders"));
        return;
      }
      const orderId = text(visit, VISIT_ORDER);
      const order = orderId ? await cx.service.find(WORK_ORDER, orderId) : null;
      const draft = `visit:${visit.id}`;
      const form = visitForm(visit);
      const error = errorLine();
      const save = h("button", { type: "submit", class: "primary" }, "Save visit");
      form.element.append(error, h("div", { class: "actions" }, save));
      const restored = keepDraft(draft, form.element);
      const note = draftNote(draft, restored, () => void screen.render(main));
      if (note) form.element.prepend(note);
      form.element.addEventListener("submit", (event) => {
        event.preventDefault();
        error.textContent = "";
        void whileBusy(save, "Saving…", () =>
          cx.service.save([{ entity: VISIT, id: visit.id, values: form.values() }]),
        )
          .then(async () => {
            dropDraft(draft);
            await cx.refresh();
            cx.announce("Visit saved on this device.");
          })
          .catch((failure: unknown) => {
            error.textContent = messageOf(failure);
          });
      });

      const photos = h("div", { class: "photos", "aria-live": "polite" });
      replace(
        main,
        h(
          "p",
          { class: "back" },
          order ? h("a", { href: `#/orders/${order.id}` }, `← ${orderLabel(order)}`) : h("a", { href: "#/orders" }, "← My work orders"),
        ),
        h("h1", { id: "screen-title" }, visitLabel(visit)),
        form.element,
        h(
          "section",
          { "aria-labelledby": "photos-title" },
          h("h2", { id: "photos-title" }, "Photos"),
          photos,
          addPhotoForm(cx, visit),
        ),
      );
      await cx.watch(PHOTO, `[Field.Photo_Visit = '${visit.id}']`, {}, (items) => {
        void showPhotos(cx, photos, items, urls);
      });
    },
  };
  return screen;
}

async function showPhotos(cx: Context, target: HTMLElement, photos: Item[], urls: string[]): Promise<void> {
  for (const url of urls.splice(0)) URL.revokeObjectURL(url);
  if (photos.length === 0) {
    replace(target, h("p", { class: "empty" }, "No photos yet."));
    return;
  }
  const figures = await Promise.all(
    photos.map(async (photo) => {
      const name = text(photo, "FileName") || "photo";
      const caption = text(photo, "Caption");
      const content = await cx.service.readFile(PHOTO, photo.id).catch(() => null);
      let picture: HTMLElement;
      if (content === null) {
        picture = h("p", { class: "muted" }, "The content is not on this device.");
      } else {
        const url = URL.createObjectURL(content);
        urls.push(url);
        picture = h("img", { src: url, alt: caption || `Photo ${name}`, class: "photo" });
      }
      const remove = h("button", { type: "button", class: "link", "aria-label": `Remove photo ${name}` }, "Remove");
      remove.addEventListener("click", () => {
        remove.disabled = true;
        cx.service
          .remove(PHOTO, photo.id)
          .then(async () => {
            await cx.refresh();
            cx.announce(`Photo ${name} removed from the visit.`);
          })
          .catch((failure: unknown) => {
            remove.disabled = false;
            cx.announce(`The photo was not removed: ${messageOf(failure)}`);
          });
      });
      return h(
        "figure",
        { "data-id": photo.id },
        picture,
        h("figcaption", {}, caption ? `${caption} (${name})` : name, " ", remove),
      );
    }),
  );
  replace(target, h("div", { class: "gallery" }, figures));
}

function addPhotoForm(cx: Context, visit: Item): HTMLElement {
  const photo = photoFields("Add a photo");
  const error = errorLine();
  const add = h("button", { type: "submit" }, "Add photo");
  const form = h(
    "form",
    { class: "card", id: "add-photo-form", "aria-label": "Add a photo" },
    photo.element,
    error,
    h("div", { class: "actions" }, add),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    error.textContent = "";
    const file = photo.file();
    if (!file) {
      error.textContent = "Choose a photo first.";
      return;
    }
    void whileBusy(add, "Adding…", () =>
      cx.service.save([
        {
          entity: PHOTO,
          values: { Caption: textValue(photo.caption.value), [PHOTO_VISIT]: visit.id },
          file: { blob: file, name: file.name },
        },
      ]),
    )
      .then(async () => {
        form.reset();
        await cx.refresh();
        cx.announce("Photo saved on this device.");
      })
      .catch((failure: unknown) => {
        error.textContent = messageOf(failure);
      });
  });
  return form;
}

/** The fields of a visit (times and summary), filled from a visit or for a new one. */
function visitForm(visit: Item | undefined) {
  const suffix = visit ? "edit" : "new";
  const started = h("input", {
    id: `visit-started-${suffix}`,
    name: "StartedAt",
    type: "datetime-local",
    required: true,
  });
  started.value = visit ? toLocalInput(text(visit, "StartedAt")) : toLocalInput(utc(new Date()));
  const ended = h("input", { id: `visit-ended-${suffix}`, name: "EndedAt", type: "datetime-local" });
  ended.value = visit ? toLocalInput(text(visit, "EndedAt")) : "";
  const summary = h("textarea", { id: `visit-summary-${suffix}`, name: "Summary", rows: 4, maxlength: 2000 });
  summary.value = visit ? text(visit, "Summary") : "";
  const element = h(
    "form",
    { class: "card", id: `visit-form-${suffix}`, "aria-labelledby": "screen-title" },
    field("Started", started),
    field("Ended", ended, "Leave empty while the visit goes on."),
    field("Summary", summary),
  );
  return {
    element,
    values: () => ({
      StartedAt: dateTimeValue(started.value),
      EndedAt: dateTimeValue(ended.value),
      Summary: textValue(summary.value),
    }),
  };
}

/** A photo file input and its caption, under a legend. */
function photoFields(legend: string) {
  const input = h("input", { id: `photo-file-${++photoFieldCount}`, name: "photo", type: "file", accept: "image/*" });
  const caption = h("input", { id: `photo-caption-${photoFieldCount}`, name: "Caption", maxlength: 400 });
  const element = h("fieldset", { class: "photo-fields" }, h("legend", {}, legend), field("Photo", input), field("Caption", caption));
  return { element, caption, file: (): File | null => input.files?.[0] ?? null };
}
let photoFieldCount = 0;

/** What a screen shows for an object the device does not hold. */
export function notOnDevice(what: string, back: string): HTMLElement[] {
  return [
    h("h1", { id: "screen-title" }, `${what} not on this device`),
    h(
      "p",
      {},
      "It may have been removed by the last sync, or it belongs to another user. ",
      h("a", { href: back }, "Back to the list"),
    ),
  ];
}
