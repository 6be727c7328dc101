// A small Markdown renderer that builds DOM nodes, never HTML strings: whatever the model
// or a tool writes, raw HTML included, reaches the page as text. It covers what answers
// use: paragraphs, headings, lists, quotes, fenced code (with a copy button), tables,
// rules, emphasis, code spans, links, and images served by Parley itself. Anything it
// does not understand stays visible as the text it was.

import { copyText, h, isExternal, safeUrl } from "./dom.js";

// A report's chart or data, as the reports tool names them (tools/reports.py).
export const REPORT_PATH = /\/reports\/[0-9a-f]{32}\.(?:png|csv)/;

const FENCE = /^( {0,3})(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;
const HEADING = /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/;
const RULE = /^ {0,3}([-*_])(?:\s*\1){2,}\s*$/;
const QUOTE = /^ {0,3}> ?(.*)$/;
const LIST_ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])(?:( +)(.*)|)$/;
const TABLE_DIVIDER = /^\s*\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$/;
const PUNCTUATION = /[!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]/;

// `found`, when given, collects the report files the text names (for the chat to show).
export function renderMarkdown(text, found = null) {
  const fragment = document.createDocumentFragment();
  const lines = String(text ?? "").replace(/\r\n?/g, "\n").split("\n");
  renderBlocks(lines, fragment, { found, tight: false });
  return fragment;
}

export function renderInline(text, found = null) {
  const fragment = document.createDocumentFragment();
  inline(String(text ?? ""), fragment, { found });
  return fragment;
}

function isBlank(line) {
  return line.trim() === "";
}

function indentOf(line) {
  return line.length - line.trimStart().length;
}

function renderBlocks(lines, out, ctx) {
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i += 1;
      continue;
    }
    let m = FENCE.exec(line);
    if (m) {
      i = fencedCode(lines, i, m, out);
      continue;
    }
    if ((m = HEADING.exec(line))) {
      // An answer's headings sit under the page's own: # becomes h3, and so on.
      const level = Math.min(6, m[1].length + 2);
      out.append(inlineInto(h(`h${level}`), m[2] || "", ctx));
      i += 1;
      continue;
    }
    if (RULE.test(line)) {
      out.append(h("hr"));
      i += 1;
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && (m = QUOTE.exec(lines[i]))) {
        quoted.push(m[1]);
        i += 1;
      }
      const block = h("blockquote");
      renderBlocks(quoted, block, { ...ctx, tight: false });
      out.append(block);
      continue;
    }
    if (LIST_ITEM.test(line)) {
      i = list(lines, i, out, ctx);
      continue;
    }
    if (isTableStart(lines, i)) {
      i = table(lines, i, out, ctx);
      continue;
    }
    const paragraph = [line.trim()];
    i += 1;
    while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines, i)) {
      paragraph.push(lines[i].trim());
      i += 1;
    }
    out.append(paragraphOf(paragraph, ctx));
  }
}

function startsBlock(lines, i) {
  const line = lines[i];
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line)
    || LIST_ITEM.test(line) || isTableStart(lines, i);
}

function paragraphOf(lines, ctx) {
  // A single line break in an answer is meant as one, as in most chat apps.
  const target = ctx.tight ? document.createDocumentFragment() : h("p");
  lines.forEach((line, n) => {
    if (n > 0) target.append(h("br"));
    inline(line, target, ctx);
  });
  if (ctx.tight && ctx.separate) target.prepend(h("br"));
  return target;
}

function inlineInto(el, text, ctx) {
  inline(text, el, ctx);
  return el;
}

function fencedCode(lines, start, match, out) {
  const [, indent, fence, lang] = match;
  const body = [];
  let i = start + 1;
  while (i < lines.length) {
    const closing = lines[i].trim();
    if (closing.startsWith(fence[0].repeat(fence.length)) && /^[`~]+$/.test(closing)) break;
    // The fence's own indent is not part of the code.
    body.push(lines[i].startsWith(indent) ? lines[i].slice(indent.length) : lines[i].trimStart());
    i += 1;
  }
  out.append(codeBlock(body.join("\n"), lang));
  return i + 1; // past the closing fence (or the end: an answer still streaming)
}

export function codeBlock(code, lang = "") {
  const label = lang ? `Copy the ${lang} code` : "Copy the code";
  const copy = h("button", { type: "button", class: "copy", "aria-label": label }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await copyText(code);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Copy failed";
    }
    setTimeout(() => { copy.textContent = "Copy"; }, 1500);
  });
  const codeEl = h("code", lang ? { "data-lang": lang } : {}, code);
  return h("div", { class: "code-block" },
    h("div", { class: "code-bar" }, h("span", { class: "code-lang" }, lang || "code"), copy),
    // Focusable, so a keyboard can scroll a long line (and axe asks it of scroll areas).
    h("pre", { tabindex: "0" }, codeEl));
}

// A list goes on while its items use the same bullet, or the same . or ) after a number.
function markerKind(marker) {
  return /\d/.test(marker) ? marker.slice(-1) : marker;
}

function list(lines, start, out, ctx) {
  const first = LIST_ITEM.exec(lines[start]);
  const ordered = /\d/.test(first[2]);
  const kind = markerKind(first[2]);
  const el = h(ordered ? "ol" : "ul");
  if (ordered && parseInt(first[2], 10) !== 1) el.setAttribute("start", String(parseInt(first[2], 10)));
  const markerIndent = first[1].length;
  let i = start;
  while (i < lines.length) {
    const m = LIST_ITEM.exec(lines[i]);
    if (!m || markerKind(m[2]) !== kind || m[1].length > markerIndent + 1) break;
    if (RULE.test(lines[i])) break;
    const contentIndent = m[1].length + m[2].length + Math.max(1, (m[3] || " ").length);
    const item = [m[4] || ""];
    let loose = false;
    i += 1;
    while (i < lines.length) {
      const line = lines[i];
      if (isBlank(line)) {
        const next = lines.slice(i + 1).find((l) => !isBlank(l));
        if (next !== undefined && indentOf(next) >= contentIndent) {
          item.push("");
          loose = true;
          i += 1;
          continue;
        }
        break;
      }
      const indent = indentOf(line);
      if (indent >= contentIndent || (indent > markerIndent && LIST_ITEM.test(line))) {
        item.push(line.slice(Math.min(indent, contentIndent)));
        i += 1;
        continue;
      }
      if (startsBlock(lines, i)) break;
      item.push(line.trim()); // a lazy continuation of the item's text
      i += 1;
    }
    const li = h("li");
    renderItem(item, li, { ...ctx, tight: !loose });
    el.append(li);
    if (i < lines.length && isBlank(lines[i])) {
      // A blank line between items: the list goes on if the next line is another item.
      const next = lines.slice(i).findIndex((l) => !isBlank(l));
      if (next === -1 || !LIST_ITEM.test(lines[i + next])) break;
      i += next;
    }
  }
  out.append(el);
  return i;
}

function renderItem(item, li, ctx) {
  if (!ctx.tight) {
    renderBlocks(item, li, ctx);
    return;
  }
  // A tight item: its text without a paragraph around it, nested blocks after it.
  let separate = false;
  let i = 0;
  while (i < item.length) {
    if (startsBlock(item, i)) {
      renderBlocks(item.slice(i), li, { ...ctx, tight: false });
      break;
    }
    const text = [];
    while (i < item.length && !isBlank(item[i]) && !startsBlock(item, i)) {
      text.push(item[i].trim());
      i += 1;
    }
    if (text.length) li.append(paragraphOf(text, { ...ctx, tight: true, separate }));
    separate = true;
    while (i < item.length && isBlank(item[i])) i += 1;
  }
}

function isTableStart(lines, i) {
  return i + 1 < lines.length && lines[i].includes("|") && TABLE_DIVIDER.test(lines[i + 1])
    && lines[i + 1].includes("-") && splitRow(lines[i]).length === splitRow(lines[i + 1]).length;
}

function splitRow(line) {
  let text = line.trim();
  if (text.startsWith("|")) text = text.slice(1);
  if (text.endsWith("|") && !text.endsWith("\\|")) text = text.slice(0, -1);
  const cells = [];
  let cell = "";
  let inCode = false;
  for (let k = 0; k < text.length; k += 1) {
    const ch = text[k];
    if (ch === "\\" && text[k + 1] === "|") {
      cell += "|";
      k += 1;
    } else if (ch === "`") {
      inCode = !inCode;
      cell += ch;
    } else if (ch === "|" && !inCode) {
      cells.push(cell.trim());
      cell = "";
    } else {
      cell += ch;
    }
  }
  cells.push(cell.trim());
  return cells;
}

function table(lines, start, out, ctx) {
  const header = splitRow(lines[start]);
  const aligns = splitRow(lines[start + 1]).map((spec) => {
    const left = spec.startsWith(":");
    const right = spec.endsWith(":");
    if (left && right) return "center";
    if (right) return "right";
    return left ? "left" : null;
  });
  const cell = (tag, text, n) => {
    const el = h(tag, aligns[n] ? { class: `align-${aligns[n]}` } : {});
    if (tag === "th") el.setAttribute("scope", "col");
    return inlineInto(el, text, ctx);
  };
  const head = h("thead", {}, h("tr", {}, header.map((text, n) => cell("th", text, n))));
  const body = h("tbody");
  let i = start + 2;
  while (i < lines.length && !isBlank(lines[i]) && lines[i].includes("|")) {
    const cells = splitRow(lines[i]);
    body.append(h("tr", {}, header.map((_, n) => cell("td", cells[n] ?? "", n))));
    i += 1;
  }
  // Wide tables scroll sideways on a phone; the wrapper is focusable for the keyboard.
  out.append(h("div", { class: "table-wrap", tabindex: "0" }, h("table", {}, head, body)));
  return i;
}

// ----- inline -----

function inline(text, out, ctx) {
  let plain = "";
  const flush = () => {
    if (plain) out.append(plain);
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    const rest = text.slice(i);
    if (ch === "\\" && i + 1 < text.length && PUNCTUATION.test(text[i + 1])) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === "`") {
      const run = /^`+/.exec(rest)[0];
      const close = text.indexOf(run, i + run.length);
      if (close !== -1) {
        flush();
        let code = text.slice(i + run.length, close);
        if (/^ .* $/.test(code)) code = code.slice(1, -1);
        out.append(h("code", {}, code));
        i = close + run.length;
        continue;
      }
      plain += run;
      i += run.length;
      continue;
    }
    if ((ch === "!" && text[i + 1] === "[") || ch === "[") {
      const link = parseLink(text, ch === "!" ? i + 1 : i);
      if (link) {
        flush();
        out.append(ch === "!" ? image(link, ctx) : anchor(link, ctx));
        i = link.end;
        continue;
      }
    }
    if (ch === "<") {
      const auto = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(rest);
      if (auto) {
        flush();
        out.append(anchor({ text: auto[1], href: auto[1], plainText: true }, ctx));
        i += auto[0].length;
        continue;
      }
    }
    const before = i === 0 ? " " : text[i - 1];
    if ((ch === "h" || ch === "H") && /[\s(*_~[]/.test(before)) {
      const bare = /^https?:\/\/[^\s<>]+/i.exec(rest);
      const address = bare && trimAddress(bare[0]);
      if (address && /^https?:\/\/[^/?#]/i.test(address)) {
        flush();
        out.append(anchor({ text: address, href: address, plainText: true }, ctx));
        i += address.length;
        continue;
      }
    }
    if (ch === "/" && /[\s(:]/.test(before)) {
      const report = new RegExp(`^${REPORT_PATH.source}`).exec(rest);
      if (report && !/[\w/]/.test(text[i + report[0].length] || " ")) {
        flush();
        ctx.found?.add(report[0]);
        out.append(anchor({ text: report[0], href: report[0], plainText: true }, ctx));
        i += report[0].length;
        continue;
      }
    }
    if (ch === "*" || ch === "_" || (ch === "~" && text[i + 1] === "~")) {
      const emphasis = parseEmphasis(text, i);
      if (emphasis) {
        flush();
        out.append(emphasis.build(ctx));
        i = emphasis.end;
        continue;
      }
      const run = new RegExp(`^\\${ch}+`).exec(rest)[0];
      plain += run;
      i += run.length;
      continue;
    }
    plain += ch;
    i += 1;
  }
  flush();
}

// A bare address ends before the punctuation that ends its sentence, and before a ")"
// it did not open (as GitHub reads them).
function trimAddress(address) {
  let end = address;
  for (;;) {
    const last = end.slice(-1);
    if (/[.,:;"'!?*_~\]]/.test(last)) {
      end = end.slice(0, -1);
    } else if (last === ")" && (end.split("(").length < end.split(")").length)) {
      end = end.slice(0, -1);
    } else {
      return end;
    }
  }
}

function parseLink(text, open) {
  // [label](destination "optional title"), brackets nested in the label allowed.
  let depth = 0;
  let close = -1;
  for (let k = open; k < text.length; k += 1) {
    if (text[k] === "\\") {
      k += 1;
    } else if (text[k] === "[") {
      depth += 1;
    } else if (text[k] === "]") {
      depth -= 1;
      if (depth === 0) {
        close = k;
        break;
      }
    }
  }
  if (close === -1 || text[close + 1] !== "(") return null;
  let k = close + 2;
  let parens = 0;
  let href = "";
  if (text[k] === "<") {
    const end = text.indexOf(">", k);
    if (end === -1) return null;
    href = text.slice(k + 1, end);
    k = end + 1;
  } else {
    while (k < text.length && !/\s/.test(text[k])) {
      if (text[k] === "(") parens += 1;
      if (text[k] === ")") {
        if (parens === 0) break;
        parens -= 1;
      }
      href += text[k];
      k += 1;
    }
  }
  const title = /^\s+("[^"]*"|'[^']*')\s*/.exec(text.slice(k));
  if (title) k += title[0].length;
  while (text[k] === " ") k += 1;
  if (text[k] !== ")") return null;
  return { text: text.slice(open + 1, close), href, end: k + 1 };
}

function anchor(link, ctx) {
  const href = safeUrl(link.href);
  const label = link.plainText ? document.createTextNode(link.text) : renderInlineNested(link.text, ctx);
  if (!href) return h("span", { class: "unsafe-link" }, label); // the text, without the link
  const external = isExternal(href);
  return h("a", {
    href,
    target: external ? "_blank" : null,
    rel: external ? "noopener noreferrer nofollow" : null,
    download: REPORT_PATH.test(href) && href.endsWith(".csv") ? "" : null,
  }, label);
}

function image(link, ctx) {
  const src = safeUrl(link.href, { image: true });
  if (!src) return anchor({ ...link, plainText: true, text: link.text || link.href }, ctx);
  if (REPORT_PATH.test(src)) ctx.found?.add(new URL(src).pathname);
  return h("img", { src, alt: link.text || "image", loading: "lazy", class: "inline-image" });
}

function renderInlineNested(text, ctx) {
  const fragment = document.createDocumentFragment();
  inline(text, fragment, ctx);
  return fragment;
}

function parseEmphasis(text, i) {
  const ch = text[i];
  const run = new RegExp(`^\\${ch}+`).exec(text.slice(i))[0];
  const size = ch === "~" ? 2 : Math.min(run.length, 3);
  if (ch === "~" && run.length !== 2) return null;
  const delimiter = ch.repeat(size);
  const start = i + size;
  if (start >= text.length || /\s/.test(text[start])) return null;
  // snake_case_words are not emphasis.
  if (ch === "_" && i > 0 && /[\p{L}\p{N}]/u.test(text[i - 1])) return null;
  let j = start;
  while ((j = text.indexOf(delimiter, j + 1)) !== -1) {
    if (/\s/.test(text[j - 1])) continue;
    // A single * must not close on part of a longer run (the start of **bold**).
    if (size === 1 && (text[j + 1] === ch || text[j - 1] === ch)) continue;
    if (ch === "_" && /[\p{L}\p{N}]/u.test(text[j + size] || " ")) continue;
    if (text.slice(start, j).includes("`") && !balancedTicks(text.slice(start, j))) continue;
    break;
  }
  if (j === -1) return null;
  const inner = text.slice(start, j);
  const build = (ctx) => {
    const outer = h(ch === "~" ? "del" : size === 1 ? "em" : "strong");
    let target = outer;
    if (size === 3) {
      target = h("em");
      outer.append(target);
    }
    inline(inner, target, ctx);
    return outer;
  };
  return { end: j + size, build };
}

function balancedTicks(text) {
  return (text.match(/`/g) || []).length % 2 === 0;
}
