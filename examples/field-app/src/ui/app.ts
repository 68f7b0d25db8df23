// The app's shell: the status bar (online state, pending changes, sync with progress, last
// sync), the rejected changes, the routes between screens, and live mode while online.

import type { Item } from "../model";
import type {
  DeviceState,
  FieldService,
  QueryOptions,
  ServiceEvent,
  SyncProgress,
  SyncReport,
} from "../service/api";
import { addRejected, dismissRejected, loadRejected, type KeptRejection } from "../store/rejected";
import { loadView, saveView, type View } from "../store/preferences";
import { kindOf, messageOf, type Context, type Screen } from "./context";
import { h, replace } from "./dom";
import { ago, formatDateTime } from "./format";
import { plannerList, plannerOrder } from "./planner";
import { profile } from "./profile";
import { renderSignIn } from "./signin";
import { newVisit, orderDetail, technicianList, visitDetail } from "./technician";

/** The elements of index.html the shell fills. */
export interface ShellElements {
  main: HTMLElement;
  nav: HTMLElement;
  network: HTMLElement;
  pending: HTMLElement;
  lastSync: HTMLElement;
  syncButton: HTMLButtonElement;
  cancelButton: HTMLButtonElement;
  progress: HTMLElement;
  syncMessage: HTMLElement;
  rejected: HTMLElement;
  announcer: HTMLElement;
}

/** How long a short message stays on screen, in milliseconds. */
const ANNOUNCE_MS = 6_000;

const ENTITY_LABELS: Record<string, string> = {
  "Field.WorkOrder": "Work order",
  "Field.Visit": "Visit",
  "Field.Photo": "Photo",
  "Field.Feedback": "Feedback",
  "Field.Site": "Site",
  "Field.Customer": "Customer",
  "Field.City": "City",
  "Field.Country": "Country",
};

/** An entity's name as a person reads it. */
export function entityLabel(entity: string): string {
  return ENTITY_LABELS[entity] ?? entity;
}

export class App {
  private state: DeviceState | null = null;
  private view: View = "technician";
  private rejected: KeptRejection[] = [];
  private readonly watchers = new Map<number, (items: Item[]) => void>();
  private screenWatches: number[] = [];
  private watchCount = 0;
  /** Bumped at every route change, so a screen still rendering for an old route stops. */
  private routeVersion = 0;
  private syncing = false;
  private readonly progress = new Map<string, SyncProgress>();
  private live: "connected" | "disconnected" | "off" = "off";
  /**
   * Whether the server answered lately: false after a sync or live mode found it unreachable,
   * true once one reached it, null when not known. `navigator.onLine` alone says only that the
   * device has a network, not that the server is on it.
   */
  private reachable: boolean | null = null;
  private announceTimer: number | null = null;

  constructor(
    private readonly service: FieldService,
    private readonly ui: ShellElements,
  ) {}

  /** Opens the device and shows the first screen: the work, or sign-in on a new device. */
  async start(server: string): Promise<void> {
    this.state = await this.service.open(server);
    if (this.state.user !== null) this.signedIn(this.state.user, loadView(this.state.user) ?? "technician");
    window.addEventListener("hashchange", () => void this.route());
    window.addEventListener("online", () => this.networkChanged());
    window.addEventListener("offline", () => this.networkChanged());
    this.ui.syncButton.addEventListener("click", () => void this.syncNow());
    this.ui.cancelButton.addEventListener("click", () => void this.service.cancelSync());
    // The last sync reads "just now", then "5 min ago": keep it current.
    window.setInterval(() => this.renderStatus(), 30_000);
    this.renderStatus();
    this.renderRejected();
    await this.route();
    this.networkChanged();
  }

  /** What the device tells without being asked. */
  handle(event: ServiceEvent): void {
    switch (event.type) {
      case "watch":
        this.watchers.get(event.watch)?.(event.items);
        break;
      case "progress":
        this.progress.set(`${event.progress.phase}:${event.progress.entity ?? ""}`, event.progress);
        this.renderProgress();
        break;
      case "synced":
        this.synced(event.report, event.origin);
        break;
      case "live-state":
        this.live = event.state;
        // The stream is lost or cannot open: the server is out of reach until it opens again.
        this.reachable = event.state === "connected";
        this.renderStatus();
        break;
      case "live-error":
        if (event.error.kind === "unreachable") this.reachable = false;
        else this.ui.syncMessage.textContent = `Live sync: ${event.error.message}`;
        this.renderStatus();
        break;
    }
  }

  private get user(): string | null {
    return this.state?.user ?? null;
  }

  private signedIn(user: string, view: View): void {
    this.view = view;
    saveView(user, view);
    this.rejected = loadRejected(user);
    this.renderNav();
    this.renderRejected();
  }

  private networkChanged(): void {
    // A network came or went: whether the server is on it is known again at the next answer.
    this.reachable = null;
    this.renderStatus();
    if (this.user === null) return;
    if (navigator.onLine) {
      // Live mode starts again, so it connects now rather than after its growing wait.
      void this.service
        .stopLive()
        .then(() => this.service.startLive())
        .catch((error: unknown) => {
          this.ui.syncMessage.textContent = `Live sync: ${messageOf(error)}`;
        });
    } else {
      this.live = "off";
      void this.service.stopLive().catch(() => {
        // Live mode ends anyway: its stream cannot stay open without a network.
      });
      this.renderStatus();
    }
  }

  /** Reads the device's state again and shows it. */
  async refresh(): Promise<void> {
    this.state = await this.service.state();
    this.renderStatus();
  }

  private async syncNow(): Promise<void> {
    if (this.syncing || this.user === null) return;
    this.syncing = true;
    this.progress.clear();
    this.ui.syncMessage.textContent = "Syncing…";
    this.renderStatus();
    this.renderProgress();
    try {
      const report = await this.service.sync();
      this.synced(report, "manual");
    } catch (error) {
      const kind = kindOf(error);
      if (kind === "unreachable") this.reachable = false;
      this.ui.syncMessage.textContent =
        kind === "cancelled"
          ? "Sync cancelled: nothing was left half done, and the changes still wait on the device."
          : `Sync failed: ${messageOf(error)}`;
    } finally {
      this.syncing = false;
      this.progress.clear();
      this.renderProgress();
      await this.refresh();
    }
  }

  private synced(report: SyncReport, origin: "live" | "manual"): void {
    this.reachable = true;
    const user = this.user;
    if (user !== null && report.rejected.length > 0) {
      this.rejected = addRejected(user, report.rejected, new Date().toISOString());
      this.renderRejected();
    }
    const downloaded = Object.values(report.downloaded).reduce((sum, n) => sum + n, 0);
    const removed = Object.values(report.removed).reduce((sum, n) => sum + n, 0);
    // Live mode syncs often; only a sync that moved something is worth a line.
    if (origin === "live" && report.uploaded + downloaded + removed + report.rejected.length === 0) {
      void this.refresh();
      return;
    }
    const parts = [`uploaded ${report.uploaded}`, `downloaded ${downloaded}`];
    if (removed > 0) parts.push(`removed ${removed}`);
    if (report.rejected.length > 0) parts.push(`${report.rejected.length} rejected`);
    if (report.filesUploaded + report.filesDownloaded > 0) {
      parts.push(`files ${report.filesUploaded} up, ${report.filesDownloaded} down`);
    }
    this.ui.syncMessage.textContent = `${origin === "live" ? "Live sync" : "Synced"}: ${parts.join(", ")}.`;
    void this.refresh();
  }

  private renderStatus(): void {
    const online = navigator.onLine && this.reachable !== false;
    this.ui.network.textContent = online ? (this.live === "connected" ? "Online · live" : "Online") : "Offline";
    this.ui.network.title = !navigator.onLine
      ? "This device has no network: changes wait on the device."
      : online
        ? ""
        : "The server cannot be reached: changes wait on the device.";
    this.ui.network.dataset.state = online ? "online" : "offline";
    const pending = this.state?.pendingChanges ?? 0;
    this.ui.pending.textContent = pending === 1 ? "1 change to upload" : `${pending} changes to upload`;
    this.ui.pending.dataset.count = String(pending);
    const last = this.state?.lastSync ?? null;
    this.ui.lastSync.textContent = last ? `Last sync ${ago(last)}` : "Never synced";
    this.ui.lastSync.title = last ? formatDateTime(last) : "";
    const signedIn = this.user !== null;
    this.ui.syncButton.disabled = this.syncing || !signedIn;
    this.ui.syncButton.textContent = this.syncing ? "Syncing…" : "Sync";
    this.ui.cancelButton.hidden = !this.syncing;
    document.body.dataset.signedIn = String(signedIn);
  }

  private renderProgress(): void {
    if (this.progress.size === 0) {
      replace(this.ui.progress);
      this.ui.progress.hidden = true;
      return;
    }
    this.ui.progress.hidden = false;
    replace(
      this.ui.progress,
      [...this.progress.values()].map((p, index) => {
        const what = p.phase === "upload" ? "Uploading" : `Downloading ${entityLabel(p.entity ?? "")}`;
        const count = p.objectsTotal === null ? `${p.objectsDone}` : `${p.objectsDone}/${p.objectsTotal}`;
        const id = `sync-progress-${index}`;
        return h(
          "div",
          { class: "progress-line" },
          h("label", { for: id }, `${what}: ${count} objects`),
          h("progress", p.objectsTotal === null ? { id } : { id, max: Math.max(p.objectsTotal, 1), value: p.objectsDone }),
        );
      }),
    );
  }

  private renderRejected(): void {
    const user = this.user;
    const panel = this.ui.rejected;
    if (user === null || this.rejected.length === 0) {
      panel.hidden = true;
      replace(panel);
      return;
    }
    panel.hidden = false;
    replace(
      panel,
      h("h2", { id: "rejected-title" }, `Rejected changes (${this.rejected.length})`),
      h(
        "p",
        { class: "hint" },
        "The server refused these changes; they are kept in its error records for an administrator. Dismiss one once you have dealt with it.",
      ),
      h(
        "ul",
        { class: "rejected-list" },
        this.rejected.map((r) =>
          h(
            "li",
            { "data-id": r.id },
            h(
              "div",
              {},
              h("strong", {}, r.label ?? `${entityLabel(r.entity)} ${r.id}`),
              h("span", { class: "muted" }, ` · ${formatDateTime(r.at)}`),
              h("p", { class: "reason" }, r.reason),
            ),
            h(
              "button",
              {
                type: "button",
                "aria-label": `Dismiss the rejection of ${r.label ?? entityLabel(r.entity)}`,
                onclick: () => {
                  this.rejected = dismissRejected(user, r.entity, r.id);
                  this.renderRejected();
                },
              },
              "Dismiss",
            ),
          ),
        ),
      ),
    );
  }

  private renderNav(): void {
    const links: Array<[string, string]> =
      this.view === "planner"
        ? [
            ["#/plan", "Work orders"],
            ["#/plan/new", "New work order"],
          ]
        : [["#/orders", "My work orders"]];
    links.push(["#/profile", "Profile"]);
    const current = location.hash || "#/";
    replace(
      this.ui.nav,
      this.user === null
        ? null
        : h(
            "ul",
            {},
            links.map(([href, label]) =>
              h("li", {}, h("a", { href, "aria-current": current === href ? "page" : null }, label)),
            ),
          ),
    );
  }

  /** Shows the screen of the current hash route. */
  private async route(): Promise<void> {
    const version = ++this.routeVersion;
    this.closeScreenWatches();
    const user = this.user;
    const main = this.ui.main;
    if (user === null || location.hash === "#/signin") {
      document.title = "Sign in · Ferry Field";
      this.renderNav();
      renderSignIn(main, this.service, user, ({ userId, view }) => void this.afterSignIn(userId, view));
      return;
    }
    const screen = this.screenFor(location.hash, user);
    if (screen === null) {
      location.replace(this.view === "planner" ? "#/plan" : "#/orders");
      return;
    }
    this.renderNav();
    try {
      await screen.render(main);
    } catch (error) {
      if (version !== this.routeVersion) return;
      replace(main, h("h1", { id: "screen-title" }, "Something went wrong"), h("p", { class: "error" }, messageOf(error)));
    }
    if (version !== this.routeVersion) return;
    document.title = `${screen.title} · Ferry Field`;
    if (document.activeElement === document.body || !main.contains(document.activeElement)) {
      // The heading takes the focus, so keyboard and screen reader users start on the new screen.
      const heading = main.querySelector<HTMLElement>("h1");
      heading?.setAttribute("tabindex", "-1");
      heading?.focus({ preventScroll: true });
    }
  }

  private screenFor(hash: string, user: string): Screen | null {
    const cx = this.context(user);
    const path = hash.replace(/^#\/?/, "").split("/").filter(Boolean);
    const [first, second, third] = path;
    if (first === "orders" && second === undefined) return technicianList(cx);
    if (first === "orders" && second !== undefined && third === undefined) return orderDetail(cx, second);
    if (first === "orders" && second !== undefined && third === "visit") return newVisit(cx, second);
    if (first === "visits" && second !== undefined) return visitDetail(cx, second);
    if (first === "plan" && second === undefined) return plannerList(cx);
    if (first === "plan" && second === "new") return plannerOrder(cx, null);
    if (first === "plan" && second === "orders" && third !== undefined) return plannerOrder(cx, third);
    if (first === "profile") return profile(cx);
    return null;
  }

  private async afterSignIn(userId: string, view: View): Promise<void> {
    this.signedIn(userId, view);
    await this.refresh();
    this.announce("Signed in. Syncing your data…");
    location.hash = view === "planner" ? "#/plan" : "#/orders";
    // The first sync after a sign-in brings the user's data (the core makes it a full one),
    // with its progress on screen; live mode starts once it is done.
    await this.syncNow();
    this.networkChanged();
  }

  private context(user: string): Context {
    const version = this.routeVersion;
    return {
      service: this.service,
      user,
      view: this.view,
      state: () => {
        if (this.state === null) throw new Error("the device is not open");
        return this.state;
      },
      navigate: (route) => {
        location.hash = route;
      },
      watch: (entity, constraint, options, onItems) => this.watch(version, entity, constraint, options, onItems),
      refresh: () => this.refresh(),
      announce: (message) => this.announce(message),
      setView: (view) => {
        this.view = view;
        saveView(user, view);
        this.renderNav();
        this.announce(`You now work as a ${view}.`);
      },
      switchUser: () => {
        location.hash = "#/signin";
      },
    };
  }

  private async watch(
    version: number,
    entity: string,
    constraint: string,
    options: QueryOptions,
    onItems: (items: Item[]) => void,
  ): Promise<() => void> {
    if (version !== this.routeVersion) return () => {};
    // The page numbers its watches, so a first result that comes at once finds its callback.
    const id = ++this.watchCount;
    this.watchers.set(id, (items) => {
      if (version === this.routeVersion) onItems(items);
    });
    this.screenWatches.push(id);
    try {
      await this.service.watch(id, entity, constraint, options);
    } catch (error) {
      this.unwatch(id);
      throw error;
    }
    return () => this.unwatch(id);
  }

  private unwatch(id: number): void {
    this.watchers.delete(id);
    this.screenWatches = this.screenWatches.filter((w) => w !== id);
    void this.service.unwatch(id).catch(() => {});
  }

  private closeScreenWatches(): void {
    for (const id of [...this.screenWatches]) this.unwatch(id);
  }

  /** Shows a short message for a few seconds (and tells screen readers). */
  announce(message: string): void {
    this.ui.announcer.textContent = message;
    if (this.announceTimer !== null) window.clearTimeout(this.announceTimer);
    this.announceTimer = window.setTimeout(() => {
      this.ui.announcer.textContent = "";
      this.announceTimer = null;
    }, ANNOUNCE_MS);
  }
}
