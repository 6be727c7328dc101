// The cards an answer shows beside its text: a tool call (its tool, arguments, status,
// duration and folded output), a report's chart and CSV, and a call waiting for the
// user's approval.

import { formatDuration, h } from "./dom.js";
import { renderMarkdown } from "./markdown.js";

// Short arguments on one line, longer ones laid out.
function argsText(args) {
  try {
    // Newlines of the layout only: JSON writes those inside strings as \n.
    const line = JSON.stringify(args ?? {}, null, 1).replace(/\n */g, " ");
    return line.length <= 60 ? line : JSON.stringify(args, null, 2);
  } catch {
    return String(args);
  }
}

export class ToolCard {
  // `call`: {tool, call_id, args}; the card starts running until `finish`.
  constructor(call) {
    this.callId = call.call_id;
    this.status = h("span", { class: "tool-status" }, "running…");
    this.outputBox = h("div", { class: "tool-output-body" });
    this.output = h("details", { class: "tool-output", hidden: true },
      h("summary", {}, "Output"), this.outputBox);
    this.reports = new Set();
    this.el = h("section", {
      class: "tool-card", "data-status": "running", "data-tool": call.tool,
      "aria-label": `Tool ${call.tool}`,
    },
    h("header", { class: "tool-head" },
      h("span", { class: "tool-icon", "aria-hidden": "true" }, "⚙"),
      h("span", { class: "tool-name" }, call.tool), this.status),
    h("div", { class: "tool-args" },
      h("span", { class: "tool-label" }, "Arguments"),
      h("pre", { tabindex: "0" }, h("code", {}, argsText(call.args)))),
    this.output);
  }

  // `end`: {status: "ok"|"error", output, duration_ms} (duration absent from history).
  finish(end) {
    const failed = end.status === "error";
    this.el.dataset.status = failed ? "error" : "ok";
    const took = formatDuration(end.duration_ms);
    this.status.textContent = failed ? `failed${took ? ` after ${took}` : ""}`
      : `done${took ? ` in ${took}` : ""}`;
    this.outputBox.replaceChildren(renderMarkdown(end.output ?? "", this.reports));
    this.output.hidden = false;
  }

  // The card of a call whose turn ended (stopped, failed) before the tool answered.
  abandon(reason) {
    if (this.el.dataset.status !== "running") return;
    this.el.dataset.status = "error";
    this.status.textContent = reason;
  }
}

// A report's chart inline and its data to download, for each report a text names.
export function reportAttachments(paths) {
  const charts = [...paths].filter((p) => p.endsWith(".png"));
  return charts.map((png) => {
    const csv = png.replace(/\.png$/, ".csv");
    return h("figure", { class: "report" },
      h("img", { src: png, alt: "Report chart: your messages and answers per day",
        class: "report-chart" }),
      h("figcaption", {},
        h("a", { href: csv, download: "" }, "Download the data (CSV)"), " · ",
        h("a", { href: png, target: "_blank", rel: "noopener" }, "Open the chart")));
  });
}

// A tool call waiting for the user (issue 19's `approval` event): approve, edit the
// arguments (JSON, checked here and validated again by the server), or reject with a
// reason the model reads. `decide` returns once the server took the decision.
export class ApprovalCard {
  constructor(request, decide) {
    this.decide = decide;
    this.request = request;
    // One id per call: the calls of one approval share its id, and each card's labels
    // must point at its own fields.
    const unique = (part) => part ?? Math.random().toString(36).slice(2);
    const id = `approval-${unique(request.id)}-${unique(request.call_id)}`;
    this.args = h("textarea", { id: `${id}-args`, rows: 4, spellcheck: "false" });
    this.args.value = argsText(request.args);
    this.reason = h("input", { id: `${id}-reason`, type: "text" });
    this.error = h("p", { class: "error", role: "alert", hidden: true });
    this.editor = h("div", { class: "approval-edit", hidden: true },
      h("label", { for: `${id}-args` }, "Arguments (JSON)"), this.args,
      h("button", { type: "button", onclick: () => this.send("edit") }, "Run with these"));
    this.rejecter = h("div", { class: "approval-reject", hidden: true },
      h("label", { for: `${id}-reason` }, "Why not (the agent reads this)"), this.reason,
      h("button", { type: "button", class: "danger", onclick: () => this.send("reject") },
        "Reject"));
    this.buttons = h("div", { class: "approval-actions" },
      h("button", { type: "button", class: "primary", onclick: () => this.send("approve") },
        "Approve"),
      h("button", { type: "button", "aria-expanded": "false",
        onclick: (e) => this.toggle(this.editor, e.currentTarget) }, "Edit"),
      h("button", { type: "button", "aria-expanded": "false",
        onclick: (e) => this.toggle(this.rejecter, e.currentTarget) }, "Reject…"));
    this.el = h("section", { class: "approval-card", role: "group",
      "aria-label": `Approve the call to ${request.tool}` },
    h("p", {}, h("strong", {}, request.tool), " waits for your approval."),
    h("pre", { tabindex: "0" }, h("code", {}, argsText(request.args))),
    this.buttons, this.editor, this.rejecter, this.error);
  }

  toggle(panel, button) {
    panel.hidden = !panel.hidden;
    button.setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) panel.querySelector("textarea, input")?.focus();
  }

  async send(decision) {
    const body = { id: this.request.id, call_id: this.request.call_id, decision };
    if (decision === "edit") {
      try {
        body.args = JSON.parse(this.args.value);
      } catch (error) {
        this.fail(`The arguments are not valid JSON: ${error.message}`);
        return;
      }
    }
    if (decision === "reject") body.reason = this.reason.value.trim() || null;
    this.el.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      await this.decide(body);
      this.el.dataset.decided = decision;
      this.buttons.replaceWith(h("p", { class: "muted" }, {
        approve: "Approved.", edit: "Approved with new arguments.", reject: "Rejected.",
      }[decision]));
      this.editor.hidden = true;
      this.rejecter.hidden = true;
      this.error.hidden = true;
    } catch (error) {
      this.fail(error.message);
    }
  }

  fail(message) {
    this.error.textContent = message;
    this.error.hidden = false;
    this.el.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  }
}
