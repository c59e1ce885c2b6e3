// The events page (issue 9, section 2). show(main, route) draws it into main and returns the
// function that undoes its subscriptions and timers when the user leaves the page.
import { el, t } from "/app/lib.js";

export function show(main, route) {
  main.append(el("h1", { textContent: t("nav_events") }), el("p", { className: "note", textContent: t("todo_page") }));
  return () => {};
}
