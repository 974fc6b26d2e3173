// Sluice console: plain JavaScript, no framework, no build step.
//
// Authentication: the admin token is kept in sessionStorage (this tab
// only) and sent as "Authorization: Bearer" on every API call. The
// streams (/api/v1/stats/stream, /api/v1/tap) are Server-Sent Events read
// with fetch() and a stream reader rather than EventSource, because
// EventSource cannot send headers: the token never appears in a URL.
"use strict";

const TOKEN_KEY = "sluice.admin_token";
const MAX_TAP_MESSAGES = 200;
const state = { token: sessionStorage.getItem(TOKEN_KEY) || "", points: [], intervalMs: 1000, stats: null, rules: [], version: null };

const $ = (id) => document.getElementById(id);

// el builds an element; children are nodes or strings (set as text, never HTML).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, String(v));
    else e[k] = v;
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function headers() {
  return state.token ? { Authorization: "Bearer " + state.token } : {};
}

async function api(path) {
  const res = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!res.ok) throw new Error(path + ": " + res.status + " " + (await res.text()).trim());
  return res.json();
}

// stream reads an SSE response from path and calls onEvent(name, data)
// for each event until the response ends or signal aborts.
async function stream(path, signal, onEvent) {
  const res = await fetch(path, { headers: { ...headers(), Accept: "text/event-stream" }, signal, cache: "no-store" });
  if (!res.ok) {
    let msg = res.status + " " + res.statusText;
    try { msg = (await res.json()).error || msg; } catch (_) { /* not JSON */ }
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) onEvent(name, JSON.parse(data));
    }
  }
}

function fmt(n, digits) {
  if (n === undefined || n === null) return "–";
  if (digits !== undefined) return Number(n).toFixed(digits);
  return Number(n).toLocaleString("en-US");
}

// ---------- pages ----------

function showPage() {
  const page = (location.hash || "#overview").slice(1);
  for (const p of ["overview", "rules", "tap"]) {
    $("page-" + p).hidden = p !== page;
    $("nav-" + p).classList.toggle("active", p === page);
  }
  if (page === "rules") loadRules();
}

// ---------- stats stream ----------

let statsAbort = null;
let statsBackoff = 500;
let wakeStats = null; // ends the wait before the next attempt

function pause(ms) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    wakeStats = () => { clearTimeout(timer); resolve(); };
  });
}

// reconnectStats restarts the stats stream at once (a new token).
function reconnectStats() {
  statsBackoff = 500;
  if (statsAbort) statsAbort.abort();
  if (wakeStats) wakeStats();
}

async function runStats() {
  for (;;) {
    statsAbort = new AbortController();
    try {
      await stream("/api/v1/stats/stream", statsAbort.signal, (name, data) => {
        statsBackoff = 500;
        setConn(true, "live");
        if (name === "history") {
          state.intervalMs = data.interval_ms;
          state.points = data.points || [];
          drawChart();
        } else if (name === "sample") {
          onSample(data);
        }
      });
      setConn(false, "stream ended");
    } catch (e) {
      if (e.name === "AbortError") { setConn(false, "reconnecting"); continue; }
      setConn(false, e.status === 401 ? "token needed" : "offline");
      if (e.status === 401) { $("token").focus(); }
    }
    await pause(statsBackoff);
    statsBackoff = Math.min(statsBackoff * 2, 10000);
  }
}

function setConn(ok, text) {
  const c = $("conn");
  c.textContent = text;
  c.className = "pill " + (ok ? "on" : "off");
}

function onSample(s) {
  state.stats = s;
  state.points.push({ t: s.t, in: s.in, out: s.out, to_sinks: s.to_sinks });
  const keep = Math.max(60, Math.round(600000 / state.intervalMs));
  if (state.points.length > keep) state.points.splice(0, state.points.length - keep);
  $("m-connections").textContent = fmt(s.connections);
  $("m-sessions").textContent = fmt(s.sessions);
  $("m-subscriptions").textContent = fmt(s.subscriptions);
  $("m-in").textContent = fmt(s.in, 1);
  $("m-out").textContent = fmt(s.out, 1);
  $("m-sinks").textContent = fmt(s.to_sinks, 1);
  $("m-pending").textContent = fmt(s.pending_acks);
  renderSinks(s.sinks);
  renderAccounting(s);
  renderRules();
  drawChart();
}

// health says connected, down (the last write or connect failed) or idle
// (nothing written yet).
function health(k) {
  if (k.connected) return el("td", { class: "ok health" }, "connected");
  if (k.last_error) return el("td", { class: "bad health" }, "down");
  return el("td", { class: "muted health" }, "idle");
}

function bytes(n) {
  if (!n) return "0 B";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  const i = Math.min(u.length - 1, Math.floor(Math.log2(n) / 10));
  return (n / Math.pow(1024, i)).toFixed(i ? 1 : 0) + " " + u[i];
}

function renderSinks(sinks) {
  const body = $("sinks").tBodies[0];
  body.replaceChildren(...(Array.isArray(sinks) ? sinks : []).map((k) => el("tr", { "data-sink": k.name },
    el("td", {}, k.name),
    health(k),
    el("td", {}, fmt(k.backlog)),
    el("td", {}, fmt(k.lag_records) + " / " + bytes(k.lag_bytes)),
    el("td", {}, fmt(k.queued)),
    el("td", {}, fmt(k.delivered)),
    el("td", {}, fmt(k.rate, 1)),
    el("td", { class: k.write_errors ? "bad" : "" }, fmt(k.write_errors)),
    el("td", { class: "err", title: k.last_error || "" }, k.last_error || ""))));
}

function renderAccounting(s) {
  const a = s.accounting;
  const id = $("identity");
  id.replaceChildren(
    el("b", { class: a.balanced ? "ok" : "bad" }, a.balanced ? "✓ balanced" : "✗ not balanced"), ": ",
    `received ${fmt(a.received)} = delivered ${fmt(a.delivered)} + buffered ${fmt(a.buffered)} + dead-lettered ${fmt(a.dead_lettered)} + dropped ${fmt(a.dropped)}`);
  $("ingest-totals").textContent = `messages ${fmt(a.messages)} · unrouted ${fmt(a.unrouted)} · decode errors ${fmt(a.decode_errors)} · rejected ${fmt(a.rejected)}`;
  $("flows").tBodies[0].replaceChildren(...s.flows.map((f) => {
    const dropped = Object.entries(f.dropped || {}).map(([r, n]) => `${n} ${r}`).join(", ") || "0";
    return el("tr", {}, el("td", {}, f.rule), el("td", { class: "text" }, f.sink), el("td", {}, fmt(f.received)),
      el("td", {}, fmt(f.delivered)), el("td", {}, fmt(f.buffered)), el("td", {}, fmt(f.dead_lettered)),
      el("td", { class: dropped === "0" ? "" : "bad" }, dropped), el("td", {}, fmt(f.retried)));
  }));
}

// ---------- chart ----------

function drawChart() {
  const cv = $("chart");
  const dpr = window.devicePixelRatio || 1;
  const w = cv.clientWidth || cv.width, h = cv.clientHeight || cv.height;
  if (cv.width !== Math.round(w * dpr)) { cv.width = Math.round(w * dpr); cv.height = Math.round(h * dpr); }
  const g = cv.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, w, h);
  const pts = state.points;
  const left = 48, right = 8, top = 10, bottom = 20;
  const span = Math.max(60000, pts.length ? pts[pts.length - 1].t - pts[0].t : 0);
  $("chart-span").textContent = "last " + Math.round(span / 60000) + " min";
  let max = 1;
  for (const p of pts) max = Math.max(max, p.in, p.out, p.to_sinks);
  // Four grid steps of a round size (1, 2, 2.5 or 5 times a power of ten).
  const raw = max / 4, mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  max = step * 4;
  const end = pts.length ? pts[pts.length - 1].t : Date.now();
  const x = (t) => left + (w - left - right) * (1 - (end - t) / span);
  const y = (v) => top + (h - top - bottom) * (1 - v / max);
  const css = getComputedStyle(document.documentElement);
  g.strokeStyle = css.getPropertyValue("--line"); g.fillStyle = css.getPropertyValue("--muted");
  g.font = "11px system-ui, sans-serif"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4, yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(left, yy); g.lineTo(w - right, yy); g.stroke();
    g.fillText(v >= 1000 ? (v / 1000).toFixed(1) + "k" : String(+v.toFixed(2)), 4, yy + 4);
  }
  g.textAlign = "center";
  for (let m = 0; m * 60000 <= span; m++) {
    if (m === 0) g.textAlign = "right";
    g.fillText(m === 0 ? "now" : "-" + m + "m", x(end - m * 60000), h - 5);
    g.textAlign = "center";
  }
  g.textAlign = "left";
  for (const [key, color] of [["in", "--in"], ["out", "--out"], ["to_sinks", "--sinks"]]) {
    g.strokeStyle = css.getPropertyValue(color); g.lineWidth = 1.5;
    g.beginPath();
    pts.forEach((p, i) => (i ? g.lineTo(x(p.t), y(p[key])) : g.moveTo(x(p.t), y(p[key]))));
    g.stroke();
  }
}

// ---------- rules ----------

async function loadRules() {
  try {
    const r = await api("/api/v1/rules");
    state.rules = r.rules || [];
    state.version = r.version;
    renderRules();
  } catch (e) {
    $("rules-version").textContent = e.message;
  }
}

function renderRules() {
  if (state.version) $("rules-version").textContent = "version " + String(state.version.hash).slice(0, 12) + " · loaded " + new Date(state.version.loaded_at).toLocaleString();
  const counts = {};
  for (const r of (state.stats && state.stats.rules) || []) counts[r.rule] = r;
  const names = state.rules.length ? state.rules : Object.keys(counts);
  $("rules").tBodies[0].replaceChildren(...names.map((name, i) => {
    const c = counts[name] || {};
    return el("tr", { "data-rule": name }, el("td", {}, i + 1), el("td", { class: "text" }, name),
      el("td", { class: "matched" }, fmt(c.matched)), el("td", { class: "passed" }, fmt(c.passed)),
      el("td", { class: c.errors ? "bad" : "" }, fmt(c.errors)), el("td", {}, fmt(c.rate, 1)));
  }));
}

// ---------- live tap ----------

let tapAbort = null;

async function startTap(filter) {
  stopTap();
  const ctl = new AbortController();
  tapAbort = ctl;
  $("tap-start").disabled = true;
  $("tap-stop").disabled = false;
  $("tap-status").textContent = "Opening tap on " + filter + " …";
  try {
    await stream("/api/v1/tap?filter=" + encodeURIComponent(filter), ctl.signal, (name, data) => {
      if (name === "open") {
        $("tap-status").textContent = `Tapping ${data.filter} (at most ${data.rate} messages/s).`;
        $("tap-status").dataset.state = "open";
      } else if (name === "message") {
        addTapMessage(data);
      } else if (name === "status") {
        $("tap-status").textContent = `Tapping ${filter}: ${data.sent} shown, ${data.dropped} dropped (browser too slow), ${data.skipped} skipped (over the rate limit).`;
      }
    });
    if (tapAbort === ctl) $("tap-status").textContent = "The tap ended.";
  } catch (e) {
    if (e.name !== "AbortError") $("tap-status").textContent = "Tap failed: " + e.message;
  } finally {
    if (tapAbort === ctl) { tapAbort = null; $("tap-start").disabled = false; $("tap-stop").disabled = true; }
  }
}

function stopTap() {
  if (tapAbort) {
    tapAbort.abort();
    tapAbort = null;
    $("tap-status").textContent = "Stopped.";
    $("tap-status").dataset.state = "stopped";
  }
  $("tap-start").disabled = false;
  $("tap-stop").disabled = true;
}

function previewText(p) {
  if (!p) return "";
  let t = p.encoding === "base64" ? "base64: " + p.text : p.text;
  if (p.truncated) t += ` … (${fmt(p.size)} bytes)`;
  return t;
}

function addTapMessage(m) {
  const decisions = el("ul", { class: "decisions" }, m.rules.map((r) => {
    const outs = (r.outputs || []).map((o) => el("li", { class: "output", "data-sink": o.sink || "", "data-topic": o.topic || "" },
      o.dead_letter ? el("span", { class: "error" }, "dead-letter store" + (o.sink ? " instead of sink " + o.sink : "")) : ["sink ", el("b", {}, o.sink)],
      o.topic ? [" topic ", el("code", {}, o.topic)] : null,
      o.key ? [" key ", el("code", {}, o.key)] : null,
      o.value ? el("pre", { class: "value" }, previewText(o.value)) : (o.dead_letter ? null : el("span", { class: "detail" }, " (raw payload)"))));
    return el("li", { class: "decision outcome-" + r.outcome, "data-rule": r.rule, "data-outcome": r.outcome, "data-when": r.when },
      el("span", { class: "rule" }, r.rule),
      el("span", { class: "badge" }, r.outcome),
      r.matched ? el("span", { class: "detail" }, "filter " + r.filter) : el("span", { class: "detail" }, "no filter matches"),
      r.when ? el("span", { class: "detail when" }, "when: " + r.when) : null,
      (r.lets || []).map((l) => el("span", { class: "detail" }, `${l.name} = ${l.value}`)),
      r.error ? el("div", { class: "error" }, r.error) : null,
      outs.length ? el("ul", { class: "outputs" }, outs) : null);
  }));
  const node = el("article", { class: "tap-msg", "data-topic": m.topic, "data-seq": m.seq },
    el("div", { class: "head" },
      el("time", {}, new Date(m.time).toLocaleTimeString()),
      el("code", { class: "topic" }, m.topic),
      el("span", {}, "client ", el("b", { class: "client" }, m.client_id || "(none)")),
      el("span", {}, "QoS " + m.qos + (m.retain ? " retained" : "")),
      el("span", { class: "muted" }, fmt(m.payload.size) + " bytes")),
    el("pre", { class: "payload" }, previewText(m.payload)),
    m.dead_lettered ? el("div", { class: "schema-dlq" }, "Dead-lettered by schema validation before the rules: " + m.decode_error) :
      (m.decode_error ? el("div", { class: "muted" }, "payload not decoded: " + m.decode_error) : null),
    m.rules.length || m.dead_lettered ? decisions : el("div", { class: "muted" }, "No rules loaded."));
  const list = $("tap-events");
  list.prepend(node);
  while (list.childElementCount > MAX_TAP_MESSAGES) list.lastElementChild.remove();
}

// ---------- start ----------

function init() {
  $("token").value = state.token;
  $("auth").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("token").value.trim();
    if (state.token) sessionStorage.setItem(TOKEN_KEY, state.token); else sessionStorage.removeItem(TOKEN_KEY);
    reconnectStats();
    loadRules();
  });
  $("tap-form").addEventListener("submit", (ev) => { ev.preventDefault(); startTap($("tap-filter").value.trim() || "#"); });
  $("tap-stop").addEventListener("click", stopTap);
  $("tap-clear").addEventListener("click", () => $("tap-events").replaceChildren());
  const unmatched = () => $("tap-events").classList.toggle("hide-unmatched", !$("tap-unmatched").checked);
  $("tap-unmatched").addEventListener("change", unmatched);
  unmatched();
  window.addEventListener("hashchange", showPage);
  window.addEventListener("resize", drawChart);
  showPage();
  loadRules();
  runStats();
}

init();
