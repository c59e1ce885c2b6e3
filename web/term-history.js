// The terminal page's history tabs (issue 9): trends of the stored 3 s / 10 min / 2 h values
// (uPlot, zoom and pan, gaps shown), status history charts and session history, the terminal's
// events, and its commands with the form to send one (operator, admin) and live states.
// Each show* (box, term, route) -> dispose.
import { el, t } from "/app/lib.js";

const todo = (box) => { box.append(el("p", { className: "note", textContent: t("todo_page") })); return () => {}; };
export const showTrends = todo;
export const showStatus = todo;
export const showEvents = todo;
export const showCommands = todo;
