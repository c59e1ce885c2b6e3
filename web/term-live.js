// The terminal page's live tab (issue 9): oscilloscope of the voltages and currents from the
// feed's terminal/{id}/wave topic, phasor diagram and table, harmonic spectrum with THD, and the
// latest values (terminal/{id}/latest). showLive(box, term, route) -> dispose.
import { el, t } from "/app/lib.js";

export function showLive(box, term) {
  box.append(el("p", { className: "note", textContent: t("todo_page") + " " + term.id }));
  return () => {};
}
