// @ts-check
/// <reference lib="webworker" />
// The app's service worker: it keeps the whole app shell (the page, its scripts and styles, the
// workers, the WebAssembly modules, the icons) in a cache made at install, and answers from it,
// so the app starts with the network off. Requests to the API (`v1/`) are never answered from
// nor put in the cache: they always go to the network.
//
// The build writes `sw.js` from this file, filling in the list of files and a version made from
// their contents (see scripts/service-worker-plugin.ts); a new build is a new cache.

const sw = /** @type {ServiceWorkerGlobalScope} */ (/** @type {unknown} */ (self));

/** @type {string[]} The app shell's files, relative to the worker's scope. */
const SHELL = __SHELL_FILES__;
/** @type {string} */
const VERSION = __SHELL_VERSION__;

const CACHE_PREFIX = "ferry-field-shell-";
const CACHE = `${CACHE_PREFIX}${VERSION}`;
const scope = new URL(sw.registration.scope);
const apiPath = new URL("v1/", scope).pathname;
const indexUrl = new URL("index.html", scope).href;

sw.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // `reload` skips the HTTP cache, so the shell cached is the one this build wrote.
      await cache.addAll(SHELL.map((file) => new Request(new URL(file, scope), { cache: "reload" })));
      await sw.skipWaiting();
    })(),
  );
});

sw.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(CACHE_PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await sw.clients.claim();
    })(),
  );
});

sw.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== scope.origin || !url.pathname.startsWith(scope.pathname)) return;
  // The API: straight to the network, never cached.
  if (url.pathname.startsWith(apiPath)) return;
  if (request.mode === "navigate") {
    event.respondWith(fromShell(indexUrl, request));
    return;
  }
  event.respondWith(fromShell(url.href, request));
});

/**
 * The shell's copy of a file, or the network's answer for a file the shell lacks (which is not
 * cached: only the files of the build are).
 * @param {string} key
 * @param {Request} request
 * @returns {Promise<Response>}
 */
async function fromShell(key, request) {
  const cache = await caches.open(CACHE);
  const hit = await cache.match(key, { ignoreSearch: true });
  return hit ?? fetch(request);
}
