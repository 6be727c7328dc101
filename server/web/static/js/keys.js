// Personal API keys (/auth/api-keys) on the settings page: for programs that speak the
// Agent Protocol, the OpenAI-compatible API or MCP as this user. A new key's secret is
// shown once, with a copy button; a key can be revoked.

import { api } from "./api.js";
import { confirmAction } from "./confirm.js";
import { announce, copyText, formatDate, h } from "./dom.js";

export class ApiKeysSection {
  constructor() {
    this.name = h("input", { id: "key-name", type: "text", maxlength: 80, required: true,
      autocomplete: "off" });
    this.days = h("input", { id: "key-days", type: "number", min: 1, max: 3650,
      inputmode: "numeric" });
    this.status = h("p", { role: "status", class: "muted" });
    this.created = h("div", { class: "key-created" });
    this.list = h("ul", { class: "key-list", "aria-labelledby": "keys-title" });
    this.el = h("section", { class: "api-keys", "aria-labelledby": "keys-title" },
      h("h2", { id: "keys-title" }, "API keys"),
      h("p", {}, "Programs use a key instead of your password: LangGraph's SDKs, "
        + "OpenAI's clients, MCP clients. Treat a key like a password."),
      h("form", { class: "key-form", onsubmit: (e) => {
        e.preventDefault();
        this.create();
      } },
      h("div", { class: "field" }, h("label", { for: "key-name" }, "Key name"), this.name),
      h("div", { class: "field" }, h("label", { for: "key-days" },
        "Expires after (days, empty for never)"), this.days),
      h("div", { class: "row" }, h("button", { type: "submit" }, "Create key"))),
      this.created, this.status, this.list);
  }

  async load() {
    try {
      const keys = await api.apiKeys();
      this.list.replaceChildren(...keys.map((k) => this.item(k)));
      if (!keys.length) this.status.textContent = "No API keys yet.";
    } catch (error) {
      this.status.textContent = `API keys could not be loaded: ${error.message}`;
    }
  }

  async create() {
    const name = this.name.value.trim();
    if (!name) return;
    const days = this.days.value ? Number(this.days.value) : null;
    let key;
    try {
      key = await api.createApiKey({ name, expires_in_days: days });
    } catch (error) {
      this.status.textContent = `Not created: ${error.message}`;
      return;
    }
    this.name.value = "";
    this.days.value = "";
    const secret = h("input", { id: "key-secret", type: "text", readonly: true,
      value: key.key, "aria-describedby": "key-secret-help" });
    this.created.replaceChildren(
      h("label", { for: "key-secret" }, `The key “${key.name}”`),
      h("div", { class: "row" }, secret, h("button", { type: "button",
        onclick: () => copyText(key.key).then(() => announce("Key copied.")) }, "Copy key")),
      h("p", { class: "muted help", id: "key-secret-help" },
        "Copy it now: it is shown this once and never again."));
    this.list.prepend(this.item(key));
    this.status.textContent = "Key created.";
    announce("Key created. Copy it now: it is shown once.");
    secret.focus();
    secret.select();
  }

  item(key) {
    const state = key.revoked_at ? `revoked ${formatDate(key.revoked_at)}`
      : key.expires_at ? `expires ${formatDate(key.expires_at)}` : "does not expire";
    const used = key.last_used_at ? `last used ${formatDate(key.last_used_at)}`
      : "never used";
    const li = h("li", { class: "key", "data-key": String(key.id) },
      h("p", {}, h("strong", {}, key.name), " ", h("code", {}, `${key.prefix}…`)),
      h("p", { class: "muted" }, `created ${formatDate(key.created_at)} · ${used} · ${state}`));
    if (!key.revoked_at) {
      const revoke = h("button", { type: "button", class: "danger subtle",
        "aria-label": `Revoke the key “${key.name}”` }, "Revoke");
      revoke.addEventListener("click", async () => {
        const sure = await confirmAction({ title: "Revoke this key?",
          text: `Programs using “${key.name}” will be refused from now on.`, ok: "Revoke" });
        if (!sure) return;
        try {
          await api.revokeApiKey(key.id);
        } catch (error) {
          this.status.textContent = `Not revoked: ${error.message}`;
          return;
        }
        li.replaceWith(this.item({ ...key, revoked_at: new Date().toISOString() }));
        this.status.textContent = "Key revoked.";
        announce("Key revoked.");
        this.el.querySelector("h2").focus?.();
      });
      li.append(revoke);
    }
    return li;
  }
}
