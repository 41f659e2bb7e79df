// newstrader dashboard: vanilla JS, no dependencies, works offline.
// The token lives in sessionStorage and goes out as a Bearer header on every data call;
// the SSE stream uses the HttpOnly cookie that POST /api/login sets (EventSource cannot send headers).
"use strict";

const TOKEN_KEY = "newstrader.token";
// What reconciliation finds; other journal events (pause, flatten, quarantine) are shown in grey.
const DRIFT_KINDS = new Set(["stale_local_cleared", "missing_local_adopted", "size_mismatch"]);
const $ = (sel) => document.querySelector(sel);
let stream = null;
const refreshTimers = {};

// ------------------------------------------------------------ helpers

// Build DOM nodes with textContent only: headlines come from outside and must never become HTML.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function pick(row, ...keys) {
  for (const key of keys) if (row && row[key] !== undefined && row[key] !== null && row[key] !== "") return row[key];
  return null;
}

function fmtNum(value, digits) {
  if (value === null || value === undefined || value === "") return "–";
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  if (digits !== undefined) return n.toFixed(digits);
  return String(value);
}

function fmtTime(value) {
  if (!value) return "";
  const d = new Date(typeof value === "number" ? value * 1000 : value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleTimeString([], { hour12: false });
}

function sideClass(value) {
  const s = String(value || "").toLowerCase();
  if (s === "long" || s === "buy" || s === "true") return "long";
  if (s === "short" || s === "sell" || s === "false") return "short";
  const n = Number(value);
  if (Number.isFinite(n) && n !== 0) return n > 0 ? "long" : "short";
  return "";
}

function toast(text) {
  const box = $("#toast");
  box.textContent = text;
  box.classList.add("show");
  clearTimeout(box._timer);
  box._timer = setTimeout(() => box.classList.remove("show"), 3500);
}

function fillTable(selector, rows, render) {
  const body = $(selector + " tbody");
  body.replaceChildren(...rows.map(render));
}

// ------------------------------------------------------------ API

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(path, options) {
  const opts = Object.assign({ method: "GET", headers: {} }, options || {});
  opts.headers = Object.assign({ Authorization: "Bearer " + token() }, opts.headers);
  if (opts.json !== undefined) {
    opts.body = JSON.stringify(opts.json);
    opts.headers["Content-Type"] = "application/json";
    delete opts.json;
  }
  const response = await fetch(path, opts);
  if (response.status === 401) { logout("Your session's token was refused; log in again."); throw new Error("unauthorized"); }
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error((body && body.detail) ? String(body.detail) : response.statusText);
  return body;
}

// ------------------------------------------------------------ login

async function login(event) {
  event.preventDefault();
  const value = $("#token").value.trim();
  $("#login-error").textContent = "";
  const response = await fetch("/api/login", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: value }),
  });
  if (response.status !== 204) {
    $("#login-error").textContent = "Wrong token.";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  $("#token").value = "";
  start();
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  if (stream) { stream.close(); stream = null; }
  $("#login").classList.remove("hidden");
  $("#login-error").textContent = message || "";
  setLive(false);
}

function start() {
  $("#login").classList.add("hidden");
  refreshAll();
  connect();
}

// ------------------------------------------------------------ panels

async function refreshPositions() {
  const data = await api("/api/positions");
  setRunState(data.paused, data.paused_reason, data.paused_since);
  const rows = data.positions || [];
  $("#positions-empty").style.display = rows.length ? "none" : "";
  fillTable("#positions", rows, (p) => {
    if (p.error) {
      return el("tr", { "data-venue": p.venue, "data-testid": "venue-error" },
        el("td", {}, p.venue),
        el("td", { colspan: 10, class: "short" }, "exchange unreadable: " + p.error));
    }
    const exch = p.exchange_size, cache = p.cached_size;
    const badge = p.drift
      ? el("span", { class: "badge drift", "data-testid": "drift-badge" }, "drift")
      : el("span", { class: "badge in-sync", "data-testid": "drift-badge" }, "in sync");
    const upnl = pick(p, "unrealized_pnl");
    return el("tr", { "data-venue": p.venue, "data-coin": p.coin, "data-testid": "position-row" },
      el("td", {}, p.venue),
      el("td", {}, el("b", {}, p.coin)),
      el("td", { class: "num " + sideClass(exch), "data-testid": "exchange-size" }, fmtNum(exch)),
      el("td", { class: "num " + sideClass(cache), "data-testid": "cached-size" }, fmtNum(cache)),
      el("td", {}, badge),
      el("td", { class: "num" }, fmtNum(p.entry_price)),
      el("td", { class: "num", "data-testid": "mark-price" }, fmtNum(p.mark_price)),
      el("td", { class: "num " + sideClass(upnl) }, fmtNum(upnl, 2)),
      el("td", { class: "num" }, fmtNum(p.take_profit)),
      el("td", { class: "num" }, fmtNum(p.stop_loss)),
      el("td", {}, el("button", {
        class: "small", "data-testid": "close-one",
        onclick: () => control("close", { coin: p.coin, venue: p.venue }),
      }, "Close")),
    );
  });
}

function outcomeCell(outcomes) {
  return el("span", {}, (outcomes || []).map((o) => {
    const status = String(pick(o, "status") || "?");
    // latency_ms maps each stage to ms since our receipt of the news (the source's publication,
    // when given, is negative): the largest is receipt → fill.
    const stages = o.latency_ms && typeof o.latency_ms === "object" ? Object.values(o.latency_ms) : [];
    const ms = stages.length ? Math.max(...stages.map(Number)) : null;
    const reason = pick(o, "reason");
    return el("span", { class: "badge " + status, title: reason || "" },
      `${o.venue}: ${status}` + (ms !== null ? ` ${fmtNum(ms, 1)} ms` : ""));
  }).reduce((acc, node) => acc.concat(node, " "), []));
}

async function refreshSignals() {
  const data = await api("/api/signals?limit=30");
  fillTable("#signals", data.signals || [], (s) => el("tr", {},
    el("td", {}, fmtTime(pick(s, "created_at", "time"))),
    el("td", {}, el("b", {}, s.coin), whyLine(s.why)),
    el("td", { class: sideClass(s.side) }, s.side),
    el("td", {}, el("span", { title: pick(s, "reason") || "" }, pick(s, "status") || "")),
    el("td", {}, outcomeCell(s.outcomes)),
    el("td", { class: "muted" }, pick(s, "source") || ""),
  ));
}

function newsItem(n) {
  const outcome = pick(n, "outcome", "decision") || "";
  const reason = pick(n, "reason") || "";
  return el("li", {},
    el("span", { class: "meta" }, fmtTime(pick(n, "received_at", "time")) + " " + (pick(n, "source") || "")),
    pick(n, "title") || "",
    " ",
    el("span", { class: "meta", title: reason }, outcome + (reason ? ` (${reason})` : "")),
  );
}

async function refreshNews() {
  const data = await api("/api/news?limit=40");
  $("#news").replaceChildren(...(data.news || []).map(newsItem));
}

async function refreshOrders() {
  const data = await api("/api/orders?limit=30");
  fillTable("#orders", data.orders || [], (o) => {
    const isBuy = o.side === "buy" ? true : o.side === "sell" ? false : null;
    return el("tr", {},
      el("td", {}, fmtTime(pick(o, "created_at", "updated_at", "time"))),
      el("td", {}, o.venue),
      el("td", {}, o.coin),
      el("td", {}, pick(o, "leg") || ""),
      el("td", { class: isBuy === true ? "long" : isBuy === false ? "short" : "" },
        isBuy === true ? "buy" : isBuy === false ? "sell" : ""),
      el("td", { class: "num" }, fmtNum(o.size)),
      el("td", { title: pick(o, "error") || "" }, (pick(o, "status") || "") + (o.reduce_only ? " (reduce-only)" : "")),
    );
  });
  fillTable("#fills", data.fills || [], (f) => el("tr", {},
    el("td", {}, fmtTime(f.time)),
    el("td", {}, f.venue),
    el("td", {}, f.coin),
    el("td", { class: f.is_buy ? "long" : "short" }, f.is_buy ? "buy" : "sell"),
    el("td", { class: "num" }, fmtNum(f.size)),
    el("td", { class: "num" }, fmtNum(f.price)),
    el("td", { class: "num " + sideClass(f.realized_pnl) }, fmtNum(f.realized_pnl, 2)),
  ));
}

async function refreshEvents() {
  const data = await api("/api/events?limit=30");
  fillTable("#events", data.events || [], (e) => el("tr", { "data-testid": "event-row" },
    el("td", {}, fmtTime(pick(e, "created_at", "time"))),
    el("td", {}, el("span", { class: "badge " + (DRIFT_KINDS.has(e.kind) ? "drift" : "skipped") }, pick(e, "kind") || "")),
    el("td", {}, e.venue),
    el("td", {}, e.coin),
    el("td", { class: "num" }, fmtNum(e.exchange_size)),
    el("td", { class: "num" }, fmtNum(e.cached_size)),
  ));
}

async function refreshStats() {
  const data = await api("/api/stats");
  setRunState(data.paused);
  $("#pnl-summary").replaceChildren(
    el("span", {}, "realized ", el("b", { class: sideClass(data.realized_pnl) }, fmtNum(data.realized_pnl, 2)), " USD"),
    el("span", {}, "fees ", el("b", {}, fmtNum(data.fees, 2))),
    el("span", {}, "fills ", el("b", {}, data.fills)),
    el("span", {}, "win rate ", el("b", {}, winRate(data.summary))),
    el("span", { "data-testid": "news-to-fill" }, "news→fill p50 ",
      el("b", {}, latencyP50(data.summary, "news_to_fill_ms_p50")), " from receipt"),
    publishedToFill(data.summary),
  );
  drawChart(data.pnl_curve || []);
}

function winRate(summary) {
  const rate = summary && summary.win_rate;
  return rate === null || rate === undefined ? "–" : `${Math.round(Number(rate) * 100)} %`;
}

function latencyP50(summary, key) {
  const ms = summary && summary[key];
  return ms === null || ms === undefined ? "–" : `${Number(ms).toFixed(0)} ms`;
}

// From the source's publication: only for news whose source said when it published.
function publishedToFill(summary) {
  if (!summary || !summary.published_to_fill_samples) return "";
  return el("span", { "data-testid": "published-to-fill" }, "from publication ",
    el("b", {}, latencyP50(summary, "published_to_fill_ms_p50")));
}

// Why the parser made the signal: its matched rules, and how the side was decided.
function whyLine(why) {
  const lines = Array.isArray(why) ? why : [];
  if (!lines.length) return "";
  return el("div", { class: "muted why", "data-testid": "why", title: lines.join("\n") }, lines.join(" · "));
}

// A small hand-written SVG line chart of cumulative realized PnL.
function drawChart(points) {
  const svg = $("#pnl-chart");
  const ns = "http://www.w3.org/2000/svg";
  const W = 600, H = 200, pad = 8;
  svg.replaceChildren();
  const mk = (tag, attrs) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    svg.append(node);
    return node;
  };
  if (!points.length) {
    mk("text", { x: W / 2, y: H / 2, fill: "#8593a3", "text-anchor": "middle", "font-size": 14 }).textContent = "no fills yet";
    return;
  }
  const values = [0, ...points.map((p) => Number(p.realized_pnl))];
  const lo = Math.min(...values), hi = Math.max(...values);
  const span = hi - lo || 1;
  const x = (i) => pad + (i * (W - 2 * pad)) / Math.max(values.length - 1, 1);
  const y = (v) => H - pad - ((v - lo) * (H - 2 * pad)) / span;
  mk("line", { x1: pad, x2: W - pad, y1: y(0), y2: y(0), stroke: "#263040", "stroke-dasharray": "4 4" });
  const path = values.map((v, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
  const last = values[values.length - 1];
  mk("path", { d: path, fill: "none", stroke: last >= 0 ? "#2fbf71" : "#ef5b5b", "stroke-width": 2 });
  mk("text", { x: W - pad, y: 16, fill: "#8593a3", "text-anchor": "end", "font-size": 12 }).textContent =
    `${last >= 0 ? "+" : ""}${last.toFixed(2)} USD`;
}

// Why and since when come with /api/positions; other answers only say whether, so a known
// reason stays shown while the bot stays paused.
function setRunState(paused, reason, since) {
  const pill = $("#run-state");
  pill.textContent = paused ? "paused" : "trading";
  pill.className = "pill " + (paused ? "warn" : "ok");
  const why = $("#paused-reason");
  if (!paused) {
    why.textContent = "";
  } else if (reason !== undefined) {
    const when = since ? " since " + since.replace("T", " ").replace("+00:00", " UTC") : "";
    why.textContent = (reason || "reason unknown") + when;
  }
}

function setLive(on) {
  const pill = $("#live-state");
  pill.textContent = on ? "live" : "offline";
  pill.className = "pill " + (on ? "ok" : "off");
}

const PANELS = {
  positions: refreshPositions, signals: refreshSignals, news: refreshNews,
  orders: refreshOrders, events: refreshEvents, stats: refreshStats,
};

// Coalesce bursts of events into one refresh per panel.
function schedule(...names) {
  for (const name of names) {
    clearTimeout(refreshTimers[name]);
    refreshTimers[name] = setTimeout(() => PANELS[name]().catch((e) => console.warn(name, e)), 250);
  }
}

function refreshAll() { schedule(...Object.keys(PANELS)); }

// ------------------------------------------------------------ live updates

const EVENT_PANELS = {
  news: ["news"], signal: ["signals", "positions"], order: ["orders", "positions"],
  fill: ["orders", "stats", "positions"], drift: ["events", "positions"], position: ["positions"],
  control: ["positions", "stats"], alert: ["events", "positions"],
};

function connect() {
  if (stream) stream.close();
  stream = new EventSource("/api/stream");
  stream.addEventListener("open", () => setLive(true));
  stream.addEventListener("error", () => setLive(false));
  stream.addEventListener("hello", () => { setLive(true); refreshAll(); });
  for (const [name, panels] of Object.entries(EVENT_PANELS)) {
    stream.addEventListener(name, () => schedule(...panels));
  }
  // A venue's outcome (`signal`) or the item's final decision (`news`) for the awaited signal.
  for (const name of ["signal", "news"]) {
    stream.addEventListener(name, (event) => {
      const data = JSON.parse(event.data || "{}");
      if (awaited && data.signal_id === awaited.signal.id) checkAwaited();
    });
  }
}

// ------------------------------------------------------------ controls

async function control(action, body) {
  try {
    const result = await api("/api/control/" + action, { method: "POST", json: body });
    setRunState(result.paused);
    toast(`${action}: done`);
  } catch (err) {
    toast(`${action} failed: ${err.message}`);
  }
  schedule("positions", "orders", "events", "stats");
}

// The webhook answers once the headline is decided; the venues' outcomes come after it. The
// form shows the decision at once, then each venue's outcome when it arrives (a stream event
// for the signal triggers a look; a slow poll covers a stream that is down).
let awaited = null;

function outcomeText(signal, outcomes) {
  const parts = (outcomes || []).map((o) => `${o.venue}: ${o.status}` + (o.reason ? ` (${o.reason})` : ""));
  return `signal ${signal.side} ${signal.coin}: ` + (parts.length ? parts.join(" · ") : "no venue to act on");
}

async function checkAwaited() {
  const waiting = awaited;
  if (!waiting) return;
  try {
    const view = await api("/api/signals/" + encodeURIComponent(waiting.signal.id));
    if (awaited !== waiting || !view.done) return;
    awaited = null;
    clearInterval(waiting.timer);
    $("#news-result").textContent = outcomeText(waiting.signal, view.outcomes);
  } catch (err) {
    console.warn("signal", err);
  }
}

function awaitOutcome(signal) {
  if (awaited) clearInterval(awaited.timer);
  awaited = { signal, timer: setInterval(checkAwaited, 2000) };
}

async function sendNews(event) {
  event.preventDefault();
  const body = { title: $("#news-title").value.trim(), source: "dashboard" };
  const coin = $("#news-coin").value.trim(), side = $("#news-side").value;
  if (coin) body.coin = coin.toUpperCase();
  if (side) body.side = side;
  const out = $("#news-result");
  try {
    const result = await api("/api/news", { method: "POST", json: body });
    if (!result.signal) {
      out.textContent = `no signal: ${result.reason}`;
    } else if (result.done) {
      out.textContent = `signal ${result.signal.side} ${result.signal.coin} (${result.reason})`;
    } else {
      out.textContent = `signal ${result.signal.side} ${result.signal.coin}: executing…`;
      awaitOutcome(result.signal);
    }
    $("#news-title").value = "";
  } catch (err) {
    out.textContent = "refused: " + err.message;
  }
  schedule("news", "signals", "positions", "orders");
}

document.addEventListener("DOMContentLoaded", () => {
  $("#login-form").addEventListener("submit", login);
  $("#news-form").addEventListener("submit", sendNews);
  $("#btn-pause").addEventListener("click", () => control("pause"));
  $("#btn-resume").addEventListener("click", () => control("resume"));
  $("#btn-reconcile").addEventListener("click", () => control("reconcile"));
  $("#btn-flatten").addEventListener("click", () => {
    if (confirm("Close every position on every venue and cancel every trigger?")) control("flatten");
  });
  $("#btn-logout").addEventListener("click", () => logout(""));
  // Positions carry marks and uPnL that move without events: refresh them on a slow timer too
  // (slow: each refresh reads the exchanges, and their request budgets are shared with trading).
  setInterval(() => { if (token()) schedule("positions"); }, 15000);
  if (token()) start();
});
