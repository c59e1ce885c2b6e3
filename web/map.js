// The map of terminal locations (Leaflet, window.L from /app/leaflet.js), used by the fleet and
// the phase pages. The tile server is the server setting `[web] tiles` (GET /app/settings.json,
// fetched once per page load); without one (the default: field networks are often offline) the
// terminals are drawn on a plain Web Mercator background with a labelled latitude/longitude
// grid, and the map makes no request at all.
//
// createMap(container, {onSelect(id)}) -> {setMarkers(markers), destroy()}
//   markers: [{id, lat, lon, color, label, text}]
//     color: "online" | "offline" | "events" (the fleet's states, with a legend) or a CSS colour
//     label: the tooltip and accessible name; text: an optional short permanent label
//     lat/lon null or missing: listed under the map as "not placed"
//   setMarkers replaces all; it keeps the view unless the set of placed terminals changed (then
//   the view fits them), and only restyles the markers whose colour or label changed.
// Each marker is a circle (no marker images are ever requested), focusable with the keyboard
// (Tab; Enter or Space selects it, as a click or tap does).
import { el, t } from "/app/lib.js";

export const STATE_COLORS = { online: "#1a7f37", offline: "#b42318", events: "#9a6700" };

const STATE_TEXT = { online: () => t("map_state_online"), events: () => t("map_state_events"), offline: () => t("map_state_offline") };

let settingsP = null;
/** The server's web settings ({tiles, tiles_attribution}), fetched once per page load; an
 *  answer other than 200 (e.g. a server without the setting) or no answer means no tiles. */
export function webSettings() {
  if (!settingsP)
    settingsP = fetch("/app/settings.json", { credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : {}))
      .catch(() => ({}))
      .then((s) => ({ tiles: (s && s.tiles) || null, tiles_attribution: (s && s.tiles_attribution) || null }));
  return settingsP;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const GRID_STEPS = [30, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001];

/** "47.5°N" / "8.25°E" with as many decimals as the grid step needs. */
function fmtDeg(v, step, pos, neg) {
  const d = step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step) - 1e-9));
  const a = Math.abs(v).toFixed(d);
  return Number(a) === 0 ? `${a}°` : `${a}°${v > 0 ? pos : neg}`;
}

/** A labelled latitude/longitude grid for the visible part of the map, redrawn after each move. */
function graticule(L, map) {
  const lines = L.layerGroup().addTo(map);
  function draw() {
    lines.clearLayers();
    const b = map.getBounds();
    const south = Math.max(b.getSouth(), -85), north = Math.min(b.getNorth(), 85);
    const west = b.getWest(), east = b.getEast();
    const span = Math.max(north - south, (east - west) / 2, 1e-6);
    const step = GRID_STEPS.find((s) => span / s >= 3) || GRID_STEPS[GRID_STEPS.length - 1];
    const style = { pane: "grid", color: "#9aa8b6", weight: 1, opacity: 0.9, interactive: false };
    const lonFrom = Math.floor(west / step) * step, latFrom = Math.floor(south / step) * step;
    const label = (latlng, text, cls) => L.marker(latlng, { pane: "grid", interactive: false, keyboard: false,
      icon: L.divIcon({ className: "map-grid-label " + cls, html: `<span>${esc(text)}</span>`, iconSize: null }) }).addTo(lines);
    for (let i = 0, lat = latFrom; lat <= north && i < 40; i++, lat = latFrom + i * step) {
      if (lat < south) continue;
      L.polyline([[lat, west - 360], [lat, east + 360]], style).addTo(lines);
      // (not where it would collide with the longitude labels along the top edge)
      if (map.latLngToContainerPoint([lat, west]).y > 34) label([lat, west], fmtDeg(lat, step, "N", "S"), "lat");
    }
    for (let i = 0, lon = lonFrom; lon <= east && i < 80; i++, lon = lonFrom + i * step) {
      if (lon < west) continue;
      L.polyline([[-85, lon], [85, lon]], style).addTo(lines);
      if (map.latLngToContainerPoint([north, lon]).x > 44) label([north, lon], fmtDeg(((lon + 540) % 360) - 180, step, "E", "W"), "lon");
    }
  }
  map.on("moveend zoomend resize", draw);
  draw();
  return () => { map.off("moveend zoomend resize", draw); lines.remove(); };
}

export function createMap(container, opts = {}) {
  const L = window.L;
  const box = el("div", { className: "map" });
  const note = el("p", { className: "note map-empty", role: "status" });
  const legend = el("ul", { className: "map-legend" });
  const unplaced = el("div", { className: "map-unplaced" });
  container.append(box, note, legend, unplaced);
  if (!L) {
    box.remove();
    note.textContent = t("map_no_leaflet");
    return { setMarkers() {}, destroy() { note.remove(); legend.remove(); unplaced.remove(); } };
  }
  const map = L.map(box, { zoomControl: false, attributionControl: true, minZoom: 1, maxZoom: 18,
                           worldCopyJump: false, zoomSnap: 0.5 });
  map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
  map.getContainer().setAttribute("role", "region");
  map.getContainer().setAttribute("aria-label", t("map_label"));
  map.createPane("grid").style.zIndex = 350; // under the markers (overlay pane, 400)
  L.control.zoom({ position: "bottomright", zoomInTitle: t("map_zoom_in"), zoomOutTitle: t("map_zoom_out") }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  map.setView([20, 0], 1);
  let dropGrid = null;
  let alive = true;
  webSettings().then((s) => {
    if (!alive) return;
    if (s.tiles) {
      L.tileLayer(s.tiles, { maxZoom: 19, attribution: s.tiles_attribution ? esc(s.tiles_attribution) : "" }).addTo(map);
      box.classList.add("tiles");
    } else {
      dropGrid = graticule(L, map);
      map.attributionControl.addAttribution(esc(t("map_no_tiles")));
    }
  });
  // the container may get its size after creation (layout, phone rotation): keep Leaflet in step
  const ro = new ResizeObserver(() => map.invalidateSize());
  ro.observe(box);

  const shown = new Map(); // id -> {m: circleMarker, color, label, text, lat, lon}
  let placedKey = "";

  const colorOf = (c) => STATE_COLORS[c] || c || STATE_COLORS.offline;
  function style(m, x) {
    const c = colorOf(x.color);
    m.setStyle({ color: "#ffffff", weight: 2, fillColor: c, fillOpacity: 0.95 });
    const p = m.getElement();
    if (p) {
      p.setAttribute("aria-label", x.label || x.id);
      p.dataset.color = c;
      if (STATE_COLORS[x.color]) p.dataset.state = x.color; else delete p.dataset.state;
    }
    m.setTooltipContent(esc(x.label || x.id));
  }
  function add(x) {
    const m = L.circleMarker([x.lat, x.lon], { radius: 9, className: "map-marker", bubblingMouseEvents: false });
    m.bindTooltip(esc(x.label || x.id), { direction: "top", offset: [0, -8] });
    m.on("click", () => { if (opts.onSelect) opts.onSelect(x.id); });
    m.addTo(map);
    const p = m.getElement();
    p.setAttribute("tabindex", "0");
    p.setAttribute("role", "button");
    p.dataset.id = x.id;
    p.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); if (opts.onSelect) opts.onSelect(x.id); }
    });
    p.addEventListener("focus", () => m.openTooltip());
    p.addEventListener("blur", () => m.closeTooltip());
    let tag = null;
    if (x.text) {
      tag = L.tooltip({ permanent: true, direction: "right", offset: [10, 0], className: "map-tag", interactive: false })
        .setLatLng([x.lat, x.lon]).setContent(esc(x.text)).addTo(map);
    }
    const rec = { m, tag, color: x.color, label: x.label, text: x.text || "" };
    style(m, x);
    shown.set(x.id, rec);
  }

  function setMarkers(markers) {
    const placed = markers.filter((x) => Number.isFinite(x.lat) && Number.isFinite(x.lon));
    const key = placed.map((x) => `${x.id}@${x.lat},${x.lon}`).sort().join("|");
    if (key !== placedKey) {
      const idsBefore = [...shown.keys()].sort().join("|");
      for (const r of shown.values()) { r.m.remove(); if (r.tag) r.tag.remove(); }
      shown.clear();
      for (const x of placed) add(x);
      placedKey = key;
      if (placed.map((x) => x.id).sort().join("|") !== idsBefore || idsBefore === "") fit(placed);
    } else {
      for (const x of placed) {
        const r = shown.get(x.id);
        if (r.color !== x.color || r.label !== x.label) { style(r.m, x); r.color = x.color; r.label = x.label; }
        if ((x.text || "") !== r.text) {
          if (r.tag) { if (x.text) r.tag.setContent(esc(x.text)); else { r.tag.remove(); r.tag = null; } }
          else if (x.text) r.tag = L.tooltip({ permanent: true, direction: "right", offset: [10, 0], className: "map-tag", interactive: false })
            .setLatLng([x.lat, x.lon]).setContent(esc(x.text)).addTo(map);
          r.text = x.text || "";
        }
      }
    }
    note.textContent = placed.length ? "" : (markers.length ? t("map_none_placed") : t("map_no_terminals"));
    note.hidden = !!placed.length;
    const states = ["online", "events", "offline"].filter((s) => placed.some((x) => x.color === s));
    legend.replaceChildren(...states.map((s) => el("li", {},
      el("span", { className: "map-dot " + s, "aria-hidden": "true" }), STATE_TEXT[s]())));
    legend.hidden = !states.length;
    const out = markers.filter((x) => !(Number.isFinite(x.lat) && Number.isFinite(x.lon)));
    const first = out.slice(0, 50);
    unplaced.replaceChildren(...(out.length ? [
      el("span", {}, t("map_unplaced", { n: out.length }), " "),
      ...first.map((x) => el("button", { type: "button", className: "linkish", textContent: x.id, title: x.label || x.id,
        onclick: () => { if (opts.onSelect) opts.onSelect(x.id); } })),
      ...(out.length > first.length ? [el("span", {}, " ", t("map_more", { n: out.length - first.length }))] : []),
    ] : []));
    unplaced.hidden = !out.length;
  }

  function fit(placed) {
    if (!placed.length) return;
    if (placed.length === 1) { map.setView([placed[0].lat, placed[0].lon], 9); return; }
    const b = L.latLngBounds(placed.map((x) => [x.lat, x.lon]));
    map.fitBounds(b.pad(0.15), { maxZoom: 12, padding: [20, 20] });
  }

  return {
    setMarkers,
    /** the Leaflet map itself (tests, and pages that need more than markers) */
    leaflet: map,
    destroy() {
      alive = false;
      ro.disconnect();
      if (dropGrid) dropGrid();
      map.remove();
      box.remove(); note.remove(); legend.remove(); unplaced.remove();
    },
  };
}
