// Trent console: entry point. The session header (who, Region, sign out) and the hash router
// that shows a page in <main>.
//
// Routes live in the URL fragment (`#/keys/<id>`), so the server only ever serves
// /console/ and its files, and a reload keeps the page. Without a session every route shows
// the sign-in page.

import { loadSession, saveSession, clearSession } from "./aws.js";
import { h, fill } from "./ui.js";
import { signInPage, keysPage, createKeyPage, keyPage, REGIONS } from "./pages.js";

const main = document.getElementById("main");
const sessionBar = document.getElementById("session");

function renderSessionBar(session) {
  if (!session) {
    fill(sessionBar);
    return;
  }
  const region = h(
    "select",
    { id: "region-switch", "aria-label": "Region" },
    REGIONS.map((r) => h("option", { value: r, selected: r === session.region }, r)),
  );
  region.addEventListener("change", () => {
    saveSession({ ...session, region: region.value });
    route();
  });
  const signOut = h("button", { type: "button", id: "sign-out" }, "Sign out");
  signOut.addEventListener("click", () => {
    clearSession();
    location.hash = "#/signin";
    route();
  });
  fill(sessionBar,
    h("span", { class: "who", title: session.arn || "" }, session.arn || session.accessKeyId),
    h("label", { for: "region-switch", class: "visually-hidden" }, "Region"),
    region,
    signOut,
  );
}

async function route() {
  const session = loadSession();
  renderSessionBar(session);
  const path = location.hash.replace(/^#/, "") || "/keys";
  let view;
  if (!session || path === "/signin") {
    view = signInPage((s) => {
      saveSession(s);
      location.hash = "#/keys";
      route();
    });
  } else if (path === "/keys") {
    view = keysPage(session);
  } else if (path === "/keys/create") {
    view = createKeyPage(session);
  } else if (path.startsWith("/keys/")) {
    view = keyPage(session, decodeURIComponent(path.slice("/keys/".length)));
  } else {
    view = h("p", {}, "No such page. ", h("a", { href: "#/keys" }, "Go to the keys list."));
  }
  fill(main, view);
  // Move focus to the new page's heading so keyboard and screen-reader users start there.
  const heading = main.querySelector("h1");
  // Each page names itself in the title too (tabs, history, screen readers).
  document.title = `${heading ? heading.textContent : "Trent"} · Trent console`;
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: false });
  }
}

window.addEventListener("hashchange", route);
route();
