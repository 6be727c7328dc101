// The sidebar's list of the user's conversations (GET /history/threads, newest first):
// open, rename (PATCH /history/threads/{id}) and delete (DELETE /chat/threads/{id}, which
// forgets the thread's state, transcript and what memory took from it).
//
// History stores a turn a moment after the answer, from the turn stream, and applies a
// deletion behind the thread's turns: until it has, the list shows what this page
// already knows (a new thread on top, a deleted one gone).

import { api, ApiError } from "./api.js";
import { confirmAction } from "./confirm.js";
import { announce, h } from "./dom.js";

// The title history gives a thread: its first message, on one line, cut at 60.
export function titleOf(text) {
  const line = text.split(/\s+/).filter(Boolean).join(" ");
  return line.length > 60 ? `${line.slice(0, 57)}...` : line || "New conversation";
}

export class ThreadList {
  constructor({ onDeleted }) {
    this.list = document.getElementById("thread-list");
    this.status = document.getElementById("threads-status");
    this.onDeleted = onDeleted;
    this.threads = [];
    this.fresh = new Map(); // started here, maybe not in history yet
    this.deleted = new Set();
    this.current = null;
    this.available = true;
  }

  async refresh() {
    let listed;
    try {
      listed = await api.threads();
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        this.available = false;
        this.status.textContent = "This server keeps no history.";
        return;
      }
      this.status.textContent = `Conversations could not be loaded: ${error.message}`;
      return;
    }
    const known = new Set(listed.map((t) => t.id));
    for (const id of known) this.fresh.delete(id);
    this.threads = [...this.fresh.values(), ...listed].filter((t) => !this.deleted.has(t.id));
    this.render();
  }

  started(id, firstMessage, agent) {
    this.fresh.set(id, { id, title: titleOf(firstMessage), agent });
    this.threads = [this.fresh.get(id), ...this.threads.filter((t) => t.id !== id)];
    this.render();
  }

  touched(id) {
    // The thread just answered goes to the top, as history will order it.
    const thread = this.threads.find((t) => t.id === id);
    if (!thread) return;
    this.threads = [thread, ...this.threads.filter((t) => t.id !== id)];
    this.render();
  }

  find(id) {
    return this.threads.find((t) => t.id === id) ?? null;
  }

  setCurrent(id) {
    this.current = id;
    for (const link of this.list.querySelectorAll("a")) {
      if (link.dataset.thread === id) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  render() {
    if (!this.available) return;
    this.status.textContent = this.threads.length ? "" : "No conversations yet.";
    this.list.replaceChildren(...this.threads.map((t) => this.item(t)));
    this.setCurrent(this.current);
  }

  item(thread) {
    const link = h("a", { href: `#/t/${encodeURIComponent(thread.id)}`, class: "thread-link",
      "data-thread": thread.id }, thread.title);
    const rename = h("button", { type: "button", class: "icon-button",
      "aria-label": `Rename “${thread.title}”`, title: "Rename" },
    h("span", { "aria-hidden": "true" }, "✎"));
    const remove = h("button", { type: "button", class: "icon-button",
      "aria-label": `Delete “${thread.title}”`, title: "Delete" },
    h("span", { "aria-hidden": "true" }, "✕"));
    const li = h("li", { class: "thread" }, link, h("span", { class: "thread-actions" },
      rename, remove));
    rename.addEventListener("click", () => this.startRename(thread, link));
    remove.addEventListener("click", () => this.remove(thread));
    return li;
  }

  startRename(thread, link) {
    const id = `rename-${thread.id}`;
    const input = h("input", { id, type: "text", value: thread.title, maxlength: 200,
      class: "rename-input" });
    const form = h("form", { class: "rename" },
      h("label", { for: id, class: "visually-hidden" }, `New title for “${thread.title}”`),
      input);
    let finished = false;
    const finish = async (save) => {
      if (finished) return;
      finished = true;
      const title = input.value.trim();
      if (save && title && title !== thread.title) {
        try {
          const renamed = await api.renameThread(thread.id, title);
          thread.title = renamed.title;
          announce(`Renamed to ${renamed.title}.`);
        } catch (error) {
          this.status.textContent = error instanceof ApiError && error.status === 404
            ? "That conversation is still being saved: rename it again in a moment."
            : `Could not rename: ${error.message}`;
        }
      }
      this.render();
      this.list.querySelector(`a[data-thread="${CSS.escape(thread.id)}"]`)?.focus();
      document.dispatchEvent(new CustomEvent("parley:thread-renamed", { detail: thread }));
    };
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      finish(true);
    });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    link.replaceWith(form);
    input.focus();
    input.select();
  }

  async remove(thread) {
    const sure = await confirmAction({
      title: "Delete this conversation?",
      text: `“${thread.title}” will be forgotten: its messages, and what Parley's memory `
        + "took from it. Facts you stated stay under Memories.",
      ok: "Delete",
    });
    if (!sure) return;
    try {
      await api.deleteThread(thread.id);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) {
        this.status.textContent = `Could not delete: ${error.message}`;
        return;
      }
    }
    const index = this.threads.findIndex((t) => t.id === thread.id);
    const neighbour = this.threads[index + 1] ?? this.threads[index - 1];
    this.deleted.add(thread.id);
    this.fresh.delete(thread.id);
    this.threads = this.threads.filter((t) => t.id !== thread.id);
    this.render();
    announce(`Deleted “${thread.title}”.`);
    const target = neighbour
      && this.list.querySelector(`a[data-thread="${CSS.escape(neighbour.id)}"]`);
    (target || document.getElementById("new-chat")).focus();
    this.onDeleted(thread.id);
  }
}
