// Trent console: small DOM helpers shared by the pages (element builder, messages, dialogs).
//
// Everything is built with DOM calls and textContent, never innerHTML, so names, tags and
// policy text from the API can never become markup or script.

/** `h("button", {type: "button", onclick}, "Save")`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces `el`'s children, skipping null/undefined/false (DOM calls would print "null"). */
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c !== undefined && c !== null && c !== false));
}

let nextId = 0;
export function uid(prefix = "f") {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

/** A labelled form field: `field("Alias", input)` wires label `for` to the control. */
export function field(label, control, hint) {
  const id = control.id || uid("field");
  control.id = id;
  const hintEl = hint ? h("p", { class: "hint", id: `${id}-hint` }, hint) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl);
}

/** An error from the API, in plain words. Access denied says so first. */
export function errorBox(error) {
  const denied = error && error.isAccessDenied;
  return h(
    "div",
    { class: "message error", role: "alert" },
    h("strong", {}, denied ? "Access denied" : `Error: ${error.code || "Error"}`),
    h("p", {}, denied ? `You are not allowed to do this. ${error.message}` : error.message || String(error)),
  );
}

export function notice(text, kind = "info") {
  return h("div", { class: `message ${kind}`, role: kind === "success" ? "status" : "note" }, text);
}

/** A region of the page that shows one message at a time. */
export function messageSlot() {
  const el = h("div", { class: "slot", "aria-live": "polite" });
  return {
    el,
    clear() {
      fill(el);
    },
    error(e) {
      fill(el, errorBox(e));
    },
    success(text) {
      fill(el, notice(text, "success"));
    },
  };
}

/** Runs `action` with `button` disabled; shows an error in `slot` if it throws. */
export async function busy(button, slot, action) {
  button.disabled = true;
  slot?.clear();
  try {
    return await action();
  } catch (e) {
    if (slot) slot.error(e);
    else throw e;
    return undefined;
  } finally {
    button.disabled = false;
  }
}

/**
 * A modal confirmation (`<dialog>`: focus moves in and is kept there, Escape cancels).
 * Resolves to true when confirmed. `body` may be text or nodes; `danger` styles the button.
 */
export function confirmDialog({ title, body, confirm = "Confirm", danger = false, requireCheck }) {
  return new Promise((resolve) => {
    const check = requireCheck ? h("input", { type: "checkbox", id: uid("ack") }) : null;
    const ok = h("button", { type: "button", class: danger ? "danger" : "primary" }, confirm);
    const cancel = h("button", { type: "button" }, "Cancel");
    const dialog = h(
      "dialog",
      { class: "dialog", "aria-labelledby": uid("dlg") },
      h("h2", { id: `${uid("dlgt")}` }, title),
      h("div", { class: "dialog-body" }, body),
      check ? h("p", { class: "check" }, check, h("label", { for: check.id }, requireCheck)) : null,
      h("div", { class: "actions" }, cancel, ok),
    );
    dialog.setAttribute("aria-labelledby", dialog.querySelector("h2").id);
    if (check) {
      ok.disabled = true;
      check.addEventListener("change", () => {
        ok.disabled = !check.checked;
      });
    }
    const done = (value) => {
      dialog.close();
      dialog.remove();
      resolve(value);
    };
    ok.addEventListener("click", () => done(true));
    cancel.addEventListener("click", () => done(false));
    dialog.addEventListener("cancel", (e) => {
      e.preventDefault();
      done(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

export function formatDate(value) {
  if (value === undefined || value === null || value === "") return "—";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  if (Number.isNaN(date.getTime())) return String(value);
  return date.toISOString().replace("T", " ").replace(/\.\d{3}Z$/, " UTC");
}

/** A two-column table of properties. */
export function propertyList(pairs) {
  return h(
    "dl",
    { class: "properties" },
    pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v === undefined || v === null || v === "" ? "—" : v)]),
  );
}

/** A table: `columns` are header texts, `rows` arrays of cells (text or nodes). */
export function table(caption, columns, rows, empty = "None.") {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      caption ? h("caption", { class: "visually-hidden" }, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
      // data-label: on a narrow window each row becomes a card, its cells labelled by column.
      h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c, i) => h("td", { "data-label": columns[i] || "" }, c))))),
    ),
  );
}

export function section(title, id, ...children) {
  const heading = h("h2", { id: `${id}-title` }, title);
  return h("section", { class: "card", id, "aria-labelledby": heading.id }, heading, ...children);
}
