// Building elements. Text always becomes a text node, never markup, so nothing a user,
// the model or a tool wrote can turn into HTML on this page. Attribute names come from
// this code only; the few attributes that carry outside values (links, images) are
// checked by safeUrl first.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "class") {
      el.className = value;
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  return append(el, children);
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

// A URL a link or an image may carry: http(s) and mailto for links, this server's own
// addresses only for images (no tracking pixels, and the CSP says the same). Returns the
// normalised address the browser will use, so what was checked is what is followed.
export function safeUrl(raw, { image = false } = {}) {
  const text = String(raw ?? "").trim();
  if (!text) return null;
  let url;
  try {
    url = new URL(text, window.location.href);
  } catch {
    return null;
  }
  if (image) return url.origin === window.location.origin ? url.href : null;
  return ["http:", "https:", "mailto:"].includes(url.protocol) ? url.href : null;
}

export function isExternal(href) {
  try {
    return new URL(href).origin !== window.location.origin;
  } catch {
    return false;
  }
}

// Tells screen readers what changed where the eye would see it (a status, not the page).
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh text node in a later task: the same words twice are announced twice.
  setTimeout(() => { region.textContent = text; }, 50);
}

export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on another host is not a secure context: the older way still works.
  const area = h("textarea", { class: "offscreen", "aria-hidden": "true", tabindex: "-1" });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

export function formatDuration(ms) {
  if (ms === undefined || ms === null) return "";
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatDate(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}
