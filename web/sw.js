// The web app's service worker (issue 9, section 3: installable, works offline). Served at
// /sw.js so its scope is the whole app.
//
// - App shell (/, /app/*, the manifest): network first, so a new release shows at once; the
//   cache answers when the server cannot be reached. Install caches "/" and every file it names.
// - API reads the offline view needs (the session, the fleet, a terminal, its latest values, the
//   events): network first; the last good answer is kept and, when the server cannot be
//   reached, returned with the header X-GS-Offline: 1 (the app then says it shows the last known
//   state). Nothing else is cached; no request with a body ever is. Logging out clears the API
//   cache (the app deletes it), a 401 drops the cached session.
const SHELL = "gs-shell-v1";
const API = "gs-api-v1";
const API_KEEP = [/^\/api\/v1\/session$/, /^\/api\/v1\/terminals$/, /^\/api\/v1\/terminals\/[^/]+$/,
  /^\/api\/v1\/terminals\/[^/]+\/latest$/, /^\/api\/v1\/events$/];

self.addEventListener("install", (e) => {
  e.waitUntil((async () => {
    const c = await caches.open(SHELL);
    const r = await fetch("/", { cache: "no-cache" });
    if (!r.ok) return;
    const html = await r.clone().text();
    await c.put("/", r);
    const refs = [...html.matchAll(/(?:src|href)="(\/app\/[^"]+|\/manifest\.webmanifest)"/g)].map((m) => m[1]);
    await Promise.all(refs.map(async (u) => {
      try { const x = await fetch(u, { cache: "no-cache" }); if (x.ok) await c.put(u, x); } catch { /* next visit */ }
    }));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (e) => {
  e.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== SHELL && k !== API) await caches.delete(k);
    await self.clients.claim();
  })());
});

async function shell(req) {
  const c = await caches.open(SHELL);
  try {
    const r = await fetch(req);
    if (r.ok) await c.put(req, r.clone());
    return r;
  } catch (err) {
    const hit = await c.match(req, { ignoreSearch: true }) || (req.mode === "navigate" ? await c.match("/") : null);
    if (hit) return hit;
    throw err;
  }
}

async function apiRead(req, url) {
  const c = await caches.open(API);
  try {
    const r = await fetch(req);
    if (r.status === 200) await c.put(req, r.clone());
    else if (r.status === 401) await c.delete(req);
    return r;
  } catch {
    const hit = await c.match(req);
    if (hit) {
      const h = new Headers(hit.headers);
      h.set("X-GS-Offline", "1");
      return new Response(await hit.blob(), { status: 200, headers: h });
    }
    return new Response(JSON.stringify({ error: { code: "offline", message: `the server cannot be reached and ${url.pathname} was not seen before` } }),
      { status: 503, headers: { "Content-Type": "application/json", "X-GS-Offline": "1" } });
  }
}

self.addEventListener("fetch", (e) => {
  const req = e.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/api/")) {
    if (API_KEEP.some((re) => re.test(url.pathname))) e.respondWith(apiRead(req, url));
    return;
  }
  if (url.pathname === "/" || url.pathname.startsWith("/app/") || url.pathname === "/manifest.webmanifest")
    e.respondWith(shell(req));
});
