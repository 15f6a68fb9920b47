// The ascent chat page: streams replies from POST /v1/chat/completions (server-sent events read
// with fetch and a ReadableStream reader). No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const log = $("log");
const conversation = []; // OpenAI messages so far (user and assistant)
let model = "";
let busy = false;

fetch("/v1/models")
  .then((r) => r.json())
  .then((j) => {
    model = (j.data && j.data[0] && j.data[0].id) || "";
    $("model").textContent = model;
  })
  .catch(() => ($("model").textContent = "(model list unavailable)"));

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

function addMessage(role, text) {
  const m = el("div", "msg " + role);
  m.appendChild(el("span", "role", role));
  const body = el("span", "content", text || "");
  m.appendChild(body);
  log.appendChild(m);
  log.scrollTop = log.scrollHeight;
  return m;
}

// An assistant bubble with collapsible reasoning and tool sections, filled as chunks arrive.
function assistantView() {
  const m = el("div", "msg assistant");
  m.appendChild(el("span", "role", "assistant"));
  const reasoning = el("details", "reasoning hidden");
  reasoning.appendChild(el("summary", null, "Reasoning"));
  const reasoningText = el("div", "reasoning-text");
  reasoning.appendChild(reasoningText);
  const tools = el("details", "tools hidden");
  tools.open = true;
  tools.appendChild(el("summary", null, "Tool calls"));
  const content = el("span", "content");
  const meta = el("span", "meta");
  m.append(reasoning, tools, content, meta);
  log.appendChild(m);
  return {
    root: m,
    content,
    reasoning(fromField, inline) {
      const all = fromField + inline;
      if (all) reasoning.classList.remove("hidden");
      reasoningText.textContent = all;
    },
    tool(line) {
      tools.classList.remove("hidden");
      tools.appendChild(el("div", "tool", line));
    },
    meta(text) {
      meta.textContent = text;
    },
  };
}

// Reasoning written inline as <|think|>…<|/think|> or <think>…</think> (models whose server does
// not split it into reasoning_content): split off, also while the span is still open.
function splitThink(text) {
  const open = /<\|think\|>|<think>/;
  const close = /<\|\/think\|>|<\/think>/;
  let thought = "";
  let visible = "";
  let rest = text;
  for (;;) {
    const o = rest.search(open);
    if (o < 0) {
      visible += rest;
      break;
    }
    visible += rest.slice(0, o);
    rest = rest.slice(o).replace(open, "");
    const c = rest.search(close);
    if (c < 0) {
      thought += rest;
      break;
    }
    thought += rest.slice(0, c);
    rest = rest.slice(c).replace(close, "");
  }
  return { thought, visible };
}

function settings() {
  const body = {
    model,
    stream: true,
    stream_options: { include_usage: true },
    temperature: Number($("temperature").value),
    max_tokens: Math.max(1, parseInt($("max-tokens").value, 10) || 1),
  };
  const strategy = $("strategy").value;
  if (strategy !== "none") {
    body.ascent = { strategy, samples: Math.max(1, parseInt($("samples").value, 10) || 1) };
  }
  return body;
}

async function send(text) {
  busy = true;
  $("send").disabled = true;
  addMessage("user", text);
  conversation.push({ role: "user", content: text });
  const view = assistantView();
  const body = settings();
  const system = $("system").value.trim();
  body.messages = (system ? [{ role: "system", content: system }] : []).concat(conversation);
  const started = performance.now();
  let firstToken = null;
  let reply = "";
  let reasoningField = "";
  let deltas = 0;
  const notes = [];
  const show = () => {
    const { thought, visible } = splitThink(reply);
    view.content.textContent = visible;
    view.reasoning(reasoningField, thought);
  };
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) {
      let message = res.status + " " + res.statusText;
      try {
        message = (await res.json()).error.message;
      } catch (_) {}
      throw new Error(message);
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let done = false;
    while (!done) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data: ")) continue;
          const data = line.slice(6);
          if (data === "[DONE]") {
            done = true;
            continue;
          }
          const chunk = JSON.parse(data);
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) notes.push(chunk.usage.prompt_tokens + " prompt + " + chunk.usage.completion_tokens + " generated tokens");
          for (const choice of chunk.choices || []) {
            if (choice.index !== 0) continue;
            const d = choice.delta || {};
            if (d.content || d.reasoning_content) {
              if (firstToken === null) firstToken = performance.now() - started;
              reply += d.content || "";
              reasoningField += d.reasoning_content || "";
              deltas += 1;
              view.root.dataset.deltas = String(deltas);
              show();
            }
            for (const call of d.tool_calls || []) {
              view.tool("→ " + call.function.name + " " + call.function.arguments + " (for the client to run)");
            }
            const ext = choice.ascent || {};
            if (ext.executed_tool_call) {
              const c = ext.executed_tool_call;
              view.tool(c.call + " → " + c.result);
            }
            if (ext.strategy) {
              notes.push(ext.strategy.strategy + ": draw " + ext.strategy.chosen + " of " + ext.strategy.samples);
            }
            if (choice.finish_reason) notes.push("finish: " + choice.finish_reason);
          }
          log.scrollTop = log.scrollHeight;
        }
      }
    }
    const secs = ((performance.now() - started) / 1000).toFixed(2);
    if (firstToken !== null) notes.push("first token " + (firstToken / 1000).toFixed(2) + " s");
    notes.push(secs + " s");
    view.meta(notes.join(" · "));
    conversation.push({ role: "assistant", content: splitThink(reply).visible });
    view.root.dataset.done = "1";
  } catch (err) {
    view.root.classList.add("error");
    view.content.textContent = (reply ? reply + "\n\n" : "") + "Error: " + err.message;
    view.root.dataset.done = "1";
    conversation.pop();
  } finally {
    busy = false;
    $("send").disabled = false;
    $("input").focus();
  }
}

$("composer").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || busy) return;
  $("input").value = "";
  send(text);
});

$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("composer").requestSubmit();
  }
});

$("clear").addEventListener("click", () => {
  conversation.length = 0;
  log.textContent = "";
});
