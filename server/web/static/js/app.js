// The chat page: who is signed in, the sidebar, and which view the #route shows:
//   #/            a new chat            #/t/<id>     a conversation
//   #/memories    what Parley remembers #/settings   the profile
// The server sends the page only to a signed-in browser; when the session ends later, a
// request gets 401 and the page keeps the draft and the place, then goes to sign in.

import { api, ApiError, onSessionExpired } from "./api.js";
import { ChatView } from "./chat.js";
import { announce, h } from "./dom.js";
import { Drafts } from "./drafts.js";
import { MemoriesView } from "./memories.js";
import { SettingsView } from "./settings.js";
import { ThreadList } from "./threads.js";

const main = document.getElementById("main");
const drafts = new Drafts();
const running = new Map(); // thread id (or "new") -> a ChatView whose turn still streams
const answered = new Map(); // thread id -> the view of its last turn, until history has it
let me = null;
let agents = [];
let threads;
let current = null;
let leaving = false;

function preferredAgent() {
  const saved = localStorage.getItem("parley.agent");
  return agents.some((a) => a.name === saved) ? saved : (agents[0]?.name ?? "assistant");
}

onSessionExpired(() => {
  if (leaving) return;
  leaving = true;
  // What was typed is saved on every keystroke; the place is saved now.
  if (current instanceof ChatView) drafts.save(current.threadId, current.input.value);
  drafts.keepPlace(window.location.hash);
  window.location.assign("/login?next=/");
});

function show(view, { focus = true } = {}) {
  current = view;
  main.replaceChildren(view.el);
  if (focus) view.focus();
  closeMenu();
}

function chatView(threadId, title, agentName) {
  const view = new ChatView({
    threadId, title, agentName, agents, drafts,
    events: {
      // A view whose turn streams stays alive while the user looks elsewhere.
      turnStarted: (key) => running.set(key, view),
      turnEnded: (key) => running.delete(key),
      threadStarted: (id, firstMessage) => {
        threads.started(id, firstMessage, view.agentName);
        view.setTitle(threads.find(id)?.title ?? "Conversation");
        // The new chat is now this thread: its address, without opening it again.
        if (current === view) {
          window.history.replaceState(null, "", `#/t/${encodeURIComponent(id)}`);
          threads.setCurrent(id);
        }
      },
      turnDone: (id) => {
        answered.set(id, view);
        threads.touched(id);
        threads.refresh();
      },
    },
  });
  return view;
}

function newChat() {
  const live = running.get("new");
  const view = live ?? chatView(null, null, preferredAgent());
  show(view);
  threads.setCurrent(null);
  return view;
}

async function openThread(id) {
  threads.setCurrent(id);
  const live = running.get(id);
  if (live) {
    show(live);
    return live;
  }
  const known = threads.find(id);
  const view = chatView(id, known?.title ?? "Conversation", known?.agent ?? preferredAgent());
  show(view);
  view.log.append(h("p", { class: "muted loading" }, "Loading the conversation…"));
  try {
    await view.load();
  } catch (error) {
    const kept = answered.get(id);
    if (error instanceof ApiError && error.status === 404 && kept) {
      // Answered here a moment ago; history has not stored it yet.
      if (current === view) show(kept);
      return kept;
    }
    view.log.replaceChildren(h("p", { class: "turn-error", role: "alert" },
      error instanceof ApiError && error.status === 404
        ? "There is no such conversation: it was deleted, or it is someone else's."
        : `The conversation could not be loaded: ${error.message}`));
    return view;
  }
  const kept = answered.get(id);
  if (kept && kept.turns > view.turns && current === view) {
    show(kept); // history is a turn behind what this page has shown
    return kept;
  }
  answered.delete(id);
  return view;
}

async function route() {
  const hash = window.location.hash || "#/";
  for (const [id, place] of [["memories-link", "#/memories"], ["settings-link", "#/settings"]]) {
    const link = document.getElementById(id);
    if (hash === place) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (hash === "#/memories") {
    const view = new MemoriesView();
    show(view);
    threads.setCurrent(null);
    await view.load();
  } else if (hash === "#/settings") {
    show(new SettingsView(me, (updated) => {
      me = updated;
      showWho();
    }));
    threads.setCurrent(null);
  } else if (hash.startsWith("#/t/")) {
    await openThread(decodeURIComponent(hash.slice(4)));
  } else {
    newChat();
  }
}

function showWho() {
  const who = document.getElementById("whoami");
  who.textContent = me ? (me.display_name || me.username) : "";
}

// ----- the phone-sized menu -----

const menuButton = document.getElementById("menu-button");
const sidebar = document.getElementById("sidebar");

function closeMenu() {
  if (sidebar.classList.contains("open")) {
    sidebar.classList.remove("open");
    menuButton.setAttribute("aria-expanded", "false");
  }
}

menuButton.addEventListener("click", () => {
  const open = !sidebar.classList.contains("open");
  sidebar.classList.toggle("open", open);
  menuButton.setAttribute("aria-expanded", String(open));
  if (open) document.getElementById("new-chat").focus();
});

sidebar.addEventListener("keydown", (e) => {
  if (e.key === "Escape" && sidebar.classList.contains("open")) {
    closeMenu();
    menuButton.focus();
  }
});

// ----- start -----

async function start() {
  try {
    me = await api.me();
  } catch (error) {
    main.replaceChildren(h("p", { class: "turn-error", role: "alert" },
      `Parley cannot be reached: ${error.message}`));
    return;
  }
  drafts.setUser(me?.username ?? "");
  showWho();
  if (!me) {
    document.getElementById("sign-out").hidden = true;
  }
  threads = new ThreadList({
    onDeleted: (id) => {
      running.get(id)?.close();
      running.delete(id);
      answered.delete(id);
      if (window.location.hash === `#/t/${encodeURIComponent(id)}`) window.location.hash = "#/";
    },
  });
  document.addEventListener("parley:thread-renamed", (e) => {
    if (current instanceof ChatView && current.threadId === e.detail.id) {
      current.setTitle(e.detail.title);
    }
  });
  try {
    agents = await api.agents();
  } catch (error) {
    agents = [{ name: "assistant", description: "" }];
  }
  const place = drafts.takePlace();
  if (place && place !== window.location.hash) window.history.replaceState(null, "", place);
  const draft = drafts.takeDraft();
  await Promise.all([threads.refresh(), route()]);
  if (draft && current instanceof ChatView) {
    current.restoreDraft(draft.text);
    drafts.save(current.threadId, current.input.value);
    announce("Your unsent message is back in the message box.");
  }
  window.addEventListener("hashchange", () => route());
  // The skip link's "#message" is not a place: followed, it would route to a new chat and
  // drop the open one (and what was typed). It only moves the focus; the address stays.
  document.querySelector(".skip-link").addEventListener("click", (event) => {
    event.preventDefault();
    document.getElementById("message")?.focus();
  });
  document.getElementById("new-chat").addEventListener("click", () => {
    if (window.location.hash === "#/" || window.location.hash === "") newChat();
    else window.location.hash = "#/";
  });
  document.getElementById("sign-out").addEventListener("click", async () => {
    leaving = true;
    for (const view of running.values()) view.close();
    drafts.forgetAll();
    await api.signOut();
    window.location.assign("/login");
  });
  document.body.dataset.ready = "true";
}

start();
