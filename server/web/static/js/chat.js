// One conversation on screen: its earlier messages, the composer, and the turn that
// streams from /chat/stream (docs/api.md: token, tool_start, tool_end, message, error,
// done, and approval: calls that wait for the user's decision, docs/approval.md).

import { api, ApiError, SessionExpired } from "./api.js";
import { ApprovalCard, reportAttachments, ToolCard } from "./cards.js";
import { announce, h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { readEvents } from "./sse.js";

// A lost stream is asked for again this many times (the server waits
// PARLEY_RESUME_GRACE_SECONDS, 5 s by default, before it cancels the turn).
const RESUME_TRIES = 3;

// An assistant's answer: text parts and tool cards in the order they came.
class Answer {
  // `rendered` is called after each render, for the conversation to follow the text.
  constructor(rendered = () => {}) {
    this.rendered = rendered;
    this.body = h("div", { class: "msg-body" });
    this.footer = h("div", { class: "msg-footer" });
    this.el = h("article", { class: "msg assistant", "aria-label": "Parley" },
      h("h2", { class: "visually-hidden" }, "Parley said"), this.body, this.footer);
    this.text = null; // the text part tokens go to now
    this.cards = new Map();
    this.shownReports = new Set();
    this.pending = false;
  }

  token(piece) {
    if (!this.text) {
      this.text = { source: "", el: h("div", { class: "markdown" }) };
      this.body.append(this.text.el);
    }
    this.text.source += piece;
    // Tokens come faster than frames: render the part once per frame.
    if (!this.pending) {
      this.pending = true;
      requestAnimationFrame(() => {
        this.pending = false;
        this.renderText(this.text, false);
      });
    }
  }

  renderText(part, final) {
    if (!part) return;
    const found = new Set();
    part.el.replaceChildren(renderMarkdown(part.source, found));
    if (final) this.attach(part.el, found);
    this.rendered();
  }

  attach(after, found) {
    const fresh = [...found].filter((p) => !this.shownReports.has(p.replace(/\.csv$/, ".png")));
    const figures = reportAttachments(fresh);
    fresh.forEach((p) => this.shownReports.add(p.replace(/\.csv$/, ".png")));
    if (figures.length) after.after(...figures);
  }

  endText() {
    this.renderText(this.text, true);
    this.text = null;
  }

  toolStart(call) {
    this.endText();
    const card = new ToolCard(call);
    this.cards.set(call.call_id, card);
    this.body.append(card.el);
    this.rendered();
  }

  toolEnd(end) {
    let card = this.cards.get(end.call_id);
    if (!card) {
      this.toolStart({ tool: end.tool, call_id: end.call_id, args: {} });
      card = this.cards.get(end.call_id);
    }
    card.finish(end);
    this.attach(card.el, card.reports);
    this.rendered();
  }

  approval(request, decide) {
    this.endText();
    const card = new ApprovalCard(request, decide);
    this.body.append(card.el);
    card.el.querySelector("button")?.focus();
  }

  // The authoritative final text (the `message` event, or history's message).
  final(content) {
    if (this.text && this.text.source === content) {
      this.endText();
      return;
    }
    if (!this.text && content) {
      this.text = { source: "", el: h("div", { class: "markdown" }) };
      this.body.append(this.text.el);
    }
    if (this.text) this.text.source = content;
    this.endText();
  }

  problem(message, retry = null) {
    this.endText();
    for (const card of this.cards.values()) card.abandon("did not finish");
    const box = h("div", { class: "turn-error", role: "alert" }, h("p", {}, message));
    if (retry) box.append(h("button", { type: "button", onclick: retry }, "Send it again"));
    this.body.append(box);
    this.el.classList.add("failed");
    this.rendered();
  }

  note(text) {
    this.footer.textContent = text;
  }
}

export class ChatView {
  constructor({ threadId = null, title = null, agentName, agents, drafts, events }) {
    this.threadId = threadId;
    this.agentName = agentName;
    this.agents = agents;
    this.drafts = drafts;
    // {turnStarted(key), turnEnded(key), threadStarted(id, firstMessage), turnDone(id)};
    // a turn's key is its thread id, or "new" for a new chat's first turn.
    this.events = events;
    this.controller = null;
    this.turns = 0;
    this.stoppedByUser = false;
    this.build(title);
  }

  get running() {
    return this.controller !== null;
  }

  build(title) {
    this.heading = h("h1", { id: "chat-title", tabindex: "-1" }, title || "New chat");
    this.picker = h("select", { id: "agent-picker", onchange: () => {
      this.agentName = this.picker.value;
      localStorage.setItem("parley.agent", this.agentName);
      this.describeAgent();
    } });
    for (const agent of this.agents) {
      this.picker.append(h("option", { value: agent.name }, agent.name));
    }
    if (this.agents.some((a) => a.name === this.agentName)) this.picker.value = this.agentName;
    this.agentHelp = h("p", { class: "muted agent-help", id: "agent-help" });
    this.log = h("div", { class: "messages", role: "log", "aria-labelledby": "chat-title" });
    // The conversation follows a streaming answer while the reader is at its end, and
    // stays put once they scroll up to read.
    this.atEnd = true;
    this.log.addEventListener("scroll", () => {
      this.atEnd = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 80;
    });
    this.input = h("textarea", {
      id: "message", rows: 1, placeholder: "Message Parley",
      "aria-describedby": "composer-hint", autocomplete: "off",
    });
    this.input.addEventListener("keydown", (e) => this.onKey(e));
    this.input.addEventListener("input", () => this.drafts.save(this.threadId, this.input.value));
    this.sendButton = h("button", { type: "submit", class: "primary send" }, "Send");
    this.stopButton = h("button", { type: "button", class: "stop danger", hidden: true,
      onclick: () => this.stop() }, "Stop");
    this.form = h("form", { class: "composer", "aria-label": "Send a message",
      onsubmit: (e) => {
        e.preventDefault();
        this.submit();
      } },
    h("label", { for: "message", class: "visually-hidden" }, "Message"),
    this.input,
    h("p", { id: "composer-hint", class: "hint" },
      "Enter sends · Shift+Enter adds a line · Esc stops an answer"),
    h("div", { class: "composer-buttons" }, this.sendButton, this.stopButton));
    this.el = h("section", { class: "chat", "aria-labelledby": "chat-title" },
      h("div", { class: "chat-head" }, this.heading,
        h("div", { class: "agent-choice" },
          h("label", { for: "agent-picker" }, "Agent"), this.picker)),
      this.agentHelp, this.log, this.form);
    this.describeAgent();
    if (!this.threadId) this.welcome();
  }

  describeAgent() {
    const agent = this.agents.find((a) => a.name === this.agentName);
    this.agentHelp.textContent = agent ? agent.description : "";
    this.picker.setAttribute("aria-describedby", "agent-help");
  }

  welcome() {
    this.log.append(h("div", { class: "welcome" },
      h("p", {}, "Ask anything. Parley's agents look up the weather, report on your own "
        + "conversations with charts, summarize and translate, and remember what you tell "
        + "them across conversations."),
      h("p", { class: "muted" }, "What they remember is under Memories; your name, "
        + "language and instructions under Settings.")));
  }

  setTitle(title) {
    this.heading.textContent = title;
  }

  restoreDraft(text) {
    if (text && !this.input.value) this.input.value = text;
  }

  focus() {
    this.input.focus();
  }

  onKey(event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      this.submit();
    } else if (event.key === "Escape" && this.running) {
      event.preventDefault();
      this.stop();
    }
  }

  // ----- earlier messages -----

  async load() {
    const page = await api.messages(this.threadId);
    this.showHistory([...page.messages].reverse());
    if (page.next_before) this.offerEarlier(page.next_before);
    await this.showWaiting();
    return page;
  }

  // Calls the thread still waits on (the page was reloaded, or the turn paused
  // elsewhere): their cards, whose decision streams the rest of the turn here.
  async showWaiting() {
    const approval = await api.approval(this.threadId);
    if (!approval) return;
    const answer = new Answer(() => this.scrollToEnd());
    this.log.append(answer.el);
    // The body a lost stream is asked for again with (/chat/stream wants a message; with
    // Last-Event-ID it only names the turn).
    const body = { message: "(decision)", agent: approval.agent, thread_id: this.threadId };
    const decided = new Set(approval.decided ?? []);  // decided one by one already
    for (const call of approval.calls.filter((c) => !decided.has(c.call_id))) {
      answer.approval({ ...call, id: approval.id, thread_id: approval.thread_id },
        (decision) => this.decide(approval, decision, answer, "", body));
    }
    this.scrollToEnd(true);
  }

  offerEarlier(before) {
    const button = h("button", { type: "button", class: "earlier" }, "Show earlier messages");
    button.addEventListener("click", async () => {
      button.disabled = true;
      const page = await api.messages(this.threadId, before);
      const holder = h("div");
      this.renderMessages([...page.messages].reverse(), holder);
      button.replaceWith(...holder.childNodes);
      if (page.next_before) this.offerEarlier(page.next_before);
    });
    this.log.prepend(button);
  }

  showHistory(messages) {
    this.log.replaceChildren();
    this.turns = 0;
    this.renderMessages(messages, this.log);
    this.scrollToEnd(true);
  }

  renderMessages(messages, into) {
    let answer = null;
    for (const message of messages) {
      if (message.role === "user") {
        into.append(this.userMessage(message.content));
        answer = null;
        continue;
      }
      if (message.role !== "assistant" && message.role !== "tool") continue;
      if (!answer) {
        answer = new Answer();
        into.append(answer.el);
      }
      if (message.role === "assistant") {
        if (message.content) answer.final(message.content);
        for (const call of message.meta?.tool_calls ?? []) {
          answer.toolStart({ tool: call.name, call_id: call.id, args: call.args });
        }
      } else {
        answer.toolEnd({ tool: message.name, call_id: message.tool_call_id, status: "ok",
          output: message.content });
      }
    }
  }

  userMessage(text) {
    this.turns += 1;
    // What the user typed, shown as typed: text, not Markdown and never HTML.
    return h("article", { class: "msg user", "aria-label": "You" },
      h("h2", { class: "visually-hidden" }, "You said"),
      h("div", { class: "msg-body user-text" }, text));
  }

  scrollToEnd(force = false) {
    if (force) this.atEnd = true;
    if (this.atEnd) this.log.scrollTop = this.log.scrollHeight;
  }

  // ----- a turn -----

  async submit() {
    const text = this.input.value;
    if (!text.trim() || this.running) return;
    this.log.querySelector(".welcome")?.remove();
    this.controller = new AbortController();
    this.stoppedByUser = false;
    this.setBusy(true);
    const body = { message: text, agent: this.agentName };
    if (this.threadId) body.thread_id = this.threadId;
    let response;
    try {
      response = await api.stream(body, this.controller.signal);
    } catch (error) {
      // Not sent (refused, or the network is down): the text stays in the box.
      this.controller = null;
      this.setBusy(false);
      if (!(error instanceof SessionExpired)) this.refused(error);
      return;
    }
    // The server took it: the words move from the box to the conversation.
    this.input.value = "";
    this.drafts.clear();
    this.log.append(this.userMessage(text));
    const answer = new Answer(() => this.scrollToEnd());
    this.log.append(answer.el);
    answer.el.setAttribute("aria-busy", "true");
    this.scrollToEnd(true);
    announce("Parley is answering.");
    await this.follow(response, answer, text, body);
  }

  refused(error) {
    let message = error.message;
    if (error instanceof ApiError && error.status === 429) {
      message = `Too many messages: try again in ${error.retryAfter ?? "a few"} seconds.`;
    } else if (!(error instanceof ApiError)) {
      message = "Parley cannot be reached: check the connection and send again.";
    }
    const notice = h("div", { class: "turn-error", role: "alert" }, h("p", {}, message));
    this.log.append(notice);
    this.scrollToEnd(true);
    this.input.focus();
  }

  async follow(response, answer, text, body) {
    const key = this.threadId ?? "new";
    this.events.turnStarted(key);
    const retry = () => {
      if (!this.input.value) this.input.value = text;
      this.input.focus();
    };
    // Before any event arrives, the turn's id alone resumes it from its first event.
    const state = { answered: false, failed: false, paused: false, done: null, retry, text,
      body, lastId: response.headers.get("X-Turn-Id") };
    let resumes = 0;
    try {
      for (;;) {
        try {
          for await (const event of readEvents(response)) {
            if (event.id) state.lastId = event.id;
            this.handle(event, answer, state);
          }
          if (!state.done) throw new TypeError("the stream ended before the turn did");
          break;
        } catch (error) {
          if (error instanceof SessionExpired) return;
          if (this.stoppedByUser) {
            answer.problem("Stopped. Nothing of this turn was kept.", retry);
            announce("Stopped.");
            break;
          }
          // The server keeps a streamed turn's events and waits a few seconds for its
          // client to come back: the same request with the last event's id gets the rest.
          response = state.lastId && resumes < RESUME_TRIES
            ? await this.resume(body, state.lastId, (resumes += 1)) : null;
          if (response) continue;
          answer.problem("The connection dropped before the answer was complete. "
            + "Nothing of this turn was kept.", retry);
          announce("The connection dropped.");
          break;
        }
      }
    } finally {
      answer.el.removeAttribute("aria-busy");
      this.controller = null;
      this.setBusy(false);
      this.events.turnEnded(key);
    }
    if (state.done && (state.answered || state.paused)) {
      const wasNew = !this.threadId;
      this.threadId = state.done.thread_id;
      if (wasNew) this.events.threadStarted(this.threadId, text);
      this.events.turnDone(this.threadId);
      announce(state.answered ? "Answer complete." : "A tool call waits for your approval.");
    }
    this.input.focus();
  }

  // A decision on a waiting call. Once every call of the step is decided the server
  // streams the rest of the turn, which goes on in the same answer; until then (202) the
  // card just shows the decision. Throws (the card shows it) when the server refuses.
  async decide(approval, decision, answer, text, body) {
    this.controller = new AbortController();
    this.stoppedByUser = false;
    this.setBusy(true);
    let response;
    try {
      response = await api.decide(approval.thread_id, decision, this.controller.signal);
    } catch (error) {
      this.controller = null;
      this.setBusy(false);
      throw error;
    }
    if (response.status === 202) {
      this.controller = null;
      this.setBusy(false);
      return;
    }
    answer.el.setAttribute("aria-busy", "true");
    // Not awaited: the card shows the decision while the rest of the turn streams.
    this.follow(response, answer, text, { ...body, thread_id: approval.thread_id });
  }

  // The rest of a turn whose stream was lost, or null when it cannot be had.
  async resume(body, lastId, attempt) {
    await new Promise((resolve) => { setTimeout(resolve, 250 * attempt); });
    if (this.stoppedByUser || !this.controller) return null;
    try {
      return await api.stream(body, this.controller.signal, lastId);
    } catch {
      return null;
    }
  }

  handle(event, answer, state) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (event.type) {
      case "token":
        answer.token(data.text ?? "");
        break;
      case "tool_start":
        answer.toolStart(data);
        break;
      case "tool_end":
        answer.toolEnd(data);
        break;
      case "approval":
        state.paused = true;
        for (const call of data.calls ?? []) {
          answer.approval({ ...call, id: data.id, thread_id: data.thread_id },
            (decision) => this.decide(data, decision, answer, state.text, state.body));
        }
        break;
      case "message":
        state.answered = true;
        answer.final(data.content ?? "");
        answer.note(data.agent && data.agent !== "assistant" ? `answered by ${data.agent}` : "");
        break;
      case "error": {
        state.failed = true;
        const wait = data.retry_after ? ` Try again in ${data.retry_after} s.` : "";
        answer.problem(`${data.message}${wait}`, state.retry);
        announce("The answer failed.");
        break;
      }
      case "done":
        state.done = data;
        break;
      default:
        break;
    }
  }

  stop() {
    if (!this.controller) return;
    this.stoppedByUser = true;
    // Closing the stream is what stops the turn: the server cancels a turn, its running
    // tools included, when its client goes away.
    this.controller.abort();
  }

  setBusy(busy) {
    this.sendButton.hidden = busy;
    this.stopButton.hidden = !busy;
    this.input.setAttribute("aria-busy", String(busy));
    if (busy && document.activeElement === this.sendButton) this.stopButton.focus();
  }

  // Leaving the view for good (its thread deleted, or the page signing out).
  close() {
    this.stop();
  }
}
