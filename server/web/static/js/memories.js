// What Parley remembers about the user (GET /memories, searched by meaning and words
// with ?query=), each deletable, "remember this" (POST /memories) and "forget
// everything" (DELETE /memories).

import { api, ApiError } from "./api.js";
import { confirmAction } from "./confirm.js";
import { announce, formatDate, h } from "./dom.js";

const PAGE = 50;
const KINDS = { fact: "Something you said", exchange: "A past exchange",
  note: "Something you asked it to remember" };
const MAX_NOTE = 16000;  // the server's limit for one memory

export class MemoriesView {
  constructor() {
    this.query = null;
    this.offset = 0;
    this.heading = h("h1", { id: "memories-title", tabindex: "-1" }, "Memories");
    this.search = h("input", { id: "memory-search", type: "search", name: "query",
      maxlength: 2000, autocomplete: "off" });
    this.status = h("p", { class: "muted", role: "status" });
    this.list = h("ul", { class: "memory-list", "aria-labelledby": "memories-title" });
    this.more = h("button", { type: "button", hidden: true, onclick: () => this.load(false) },
      "Show more");
    this.forgetAll = h("button", { type: "button", class: "danger",
      onclick: () => this.forgetEverything() }, "Forget everything");
    this.note = h("textarea", { id: "memory-note", name: "note", rows: 2,
      maxlength: MAX_NOTE, required: true });
    const noteForm = h("form", { class: "memory-note", onsubmit: (e) => {
      e.preventDefault();
      this.remember();
    } },
    h("label", { for: "memory-note" }, "Remember this"),
    h("div", { class: "row" }, this.note, h("button", { type: "submit" }, "Remember")));
    const searchForm = h("form", { role: "search", class: "memory-search", onsubmit: (e) => {
      e.preventDefault();
      this.query = this.search.value.trim() || null;
      this.load(true);
    } },
    h("label", { for: "memory-search" }, "Search your memories"),
    h("div", { class: "row" }, this.search,
      h("button", { type: "submit" }, "Search"),
      h("button", { type: "button", onclick: () => {
        this.search.value = "";
        this.query = null;
        this.load(true);
      } }, "Show all")));
    this.el = h("section", { class: "page memories", "aria-labelledby": "memories-title" },
      this.heading,
      h("p", {}, "What Parley remembers about you across conversations: things you told it "
        + "and past exchanges it may recall. Delete anything you do not want it to keep."),
      noteForm, searchForm, this.status, this.list, this.more,
      h("div", { class: "danger-zone" },
        h("h2", {}, "Forget everything"),
        h("p", {}, "Every memory goes; your conversations stay under their own delete "
          + "buttons."),
        this.forgetAll));
  }

  focus() {
    this.heading.focus();
  }

  async load(reset = true) {
    if (reset) {
      this.offset = 0;
      this.list.replaceChildren();
    }
    this.status.textContent = "Loading…";
    let found;
    try {
      found = await api.memories({ query: this.query, limit: PAGE, offset: this.offset });
    } catch (error) {
      this.more.hidden = true;
      this.forgetAll.disabled = error instanceof ApiError && error.status === 404;
      this.status.textContent = error instanceof ApiError && error.status === 404
        ? "Long-term memory is off on this server." : `Memories could not be loaded: ${error.message}`;
      return;
    }
    this.offset += found.length;
    this.list.append(...found.map((m) => this.item(m)));
    this.more.hidden = this.query !== null || found.length < PAGE;
    const shown = this.list.children.length;
    if (this.query) {
      this.status.textContent = shown ? `${shown} found for “${this.query}”.`
        : `Nothing found for “${this.query}”.`;
    } else {
      this.status.textContent = shown ? `${shown} memor${shown === 1 ? "y" : "ies"}.`
        : "Parley remembers nothing about you yet.";
    }
  }

  async remember() {
    const text = this.note.value.trim();
    if (!text) return;
    let kept;
    try {
      [kept] = await api.remember(text);
    } catch (error) {
      this.status.textContent = `Could not remember it: ${error.message}`;
      return;  // the words stay in the box
    }
    this.note.value = "";
    this.list.querySelector(`[data-memory="${CSS.escape(kept.id)}"]`)?.remove();
    this.list.prepend(this.item(kept));
    this.offset += 1;
    this.status.textContent = "Remembered.";
    announce("Remembered.");
  }

  item(memory) {
    const kind = KINDS[memory.metadata?.kind] ?? "Memory";
    const snippet = memory.text.length > 60 ? `${memory.text.slice(0, 57)}...` : memory.text;
    const remove = h("button", { type: "button", class: "danger subtle",
      "aria-label": `Delete the memory “${snippet}”` }, "Delete");
    const li = h("li", { class: "memory", "data-memory": memory.id },
      h("p", { class: "memory-text" }, memory.text),
      h("p", { class: "memory-meta muted" }, kind, " · ", formatDate(memory.created_at),
        memory.score !== null && memory.score !== undefined
          ? ` · match ${Math.round(memory.score * 100)}%` : ""),
      remove);
    remove.addEventListener("click", async () => {
      remove.disabled = true;
      try {
        await api.deleteMemory(memory.id);
      } catch (error) {
        if (!(error instanceof ApiError && error.status === 404)) {
          remove.disabled = false;
          this.status.textContent = `Could not delete: ${error.message}`;
          return;
        }
      }
      const next = li.nextElementSibling ?? li.previousElementSibling;
      li.remove();
      this.offset = Math.max(0, this.offset - 1);
      announce("Memory deleted.");
      (next?.querySelector("button") ?? this.heading).focus();
    });
    return li;
  }

  async forgetEverything() {
    const sure = await confirmAction({
      title: "Forget everything?",
      text: "Parley will forget every memory it keeps about you. This cannot be undone.",
      ok: "Forget everything",
    });
    if (!sure) return;
    try {
      const { deleted } = await api.forgetEverything();
      this.list.replaceChildren();
      this.more.hidden = true;
      this.status.textContent = `Forgot ${deleted} memor${deleted === 1 ? "y" : "ies"}.`;
    } catch (error) {
      this.status.textContent = `Could not forget: ${error.message}`;
    }
  }
}
