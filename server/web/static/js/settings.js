// The user's profile (GET and PATCH /auth/me): the name, language and instructions the
// agents follow from the next answer on; below it, the user's API keys (keys.js).

import { api } from "./api.js";
import { h } from "./dom.js";
import { ApiKeysSection } from "./keys.js";

const LANGUAGES = ["English", "French", "German", "Spanish", "Italian", "Portuguese",
  "Dutch", "Polish", "Swedish", "Japanese", "Chinese", "Korean", "Arabic", "Hindi"];

function field(id, label, control, help = null) {
  control.id = id;
  if (help) control.setAttribute("aria-describedby", `${id}-help`);
  return h("div", { class: "field" }, h("label", { for: id }, label), control,
    help ? h("p", { class: "muted help", id: `${id}-help` }, help) : null);
}

export class SettingsView {
  constructor(me, onSaved) {
    this.me = me;
    this.onSaved = onSaved;
    this.heading = h("h1", { id: "settings-title", tabindex: "-1" }, "Settings");
    this.el = h("section", { class: "page settings", "aria-labelledby": "settings-title" },
      this.heading);
    if (!me) {
      this.el.append(h("p", {}, "This server runs without accounts, so there is no "
        + "profile to set."));
      return;
    }
    this.name = h("input", { type: "text", maxlength: 80, autocomplete: "nickname" });
    this.language = h("input", { type: "text", maxlength: 35, list: "languages",
      autocomplete: "off" });
    this.instructions = h("textarea", { rows: 5, maxlength: 2000 });
    this.status = h("p", { role: "status", class: "muted" });
    this.error = h("p", { role: "alert", class: "error" });
    this.fill(me);
    this.el.append(
      h("p", {}, "Signed in as ", h("strong", {}, me.username), "."),
      h("form", { class: "settings-form", onsubmit: (e) => {
        e.preventDefault();
        this.save();
      } },
      field("display-name", "Display name", this.name, "What the agents call you."),
      field("language", "Preferred language", this.language,
        "The agents answer in it, such as French or pt-BR. Leave empty for any."),
      h("datalist", { id: "languages" }, LANGUAGES.map((l) => h("option", { value: l }))),
      field("instructions", "Custom instructions", this.instructions,
        "How the agents should answer you, up to 2,000 characters."),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Save")),
      this.status, this.error));
    this.keys = new ApiKeysSection();
    this.el.append(this.keys.el);
    this.keys.load();
  }

  fill(me) {
    this.name.value = me.display_name ?? "";
    this.language.value = me.preferred_language ?? "";
    this.instructions.value = me.custom_instructions ?? "";
  }

  focus() {
    this.heading.focus();
  }

  async save() {
    this.status.textContent = "Saving…";
    this.error.textContent = "";
    // An empty field clears the setting (null), as PATCH /auth/me takes it.
    const value = (el) => el.value.trim() || null;
    try {
      const me = await api.updateProfile({
        display_name: value(this.name),
        preferred_language: value(this.language),
        custom_instructions: value(this.instructions),
      });
      this.fill(me);
      this.status.textContent = "Saved. The next answer follows these settings.";
      this.onSaved(me);
    } catch (error) {
      this.status.textContent = "";
      this.error.textContent = `Not saved: ${error.message}`;
    }
  }
}
