import Foundation

/// The dashboard's one page: plain HTML, CSS and JavaScript with nothing fetched from elsewhere, so that it works
/// on a machine without internet access.
///
/// The page comes with the counters and the recent traffic as they are when it is asked for, then follows the event
/// stream from there: it draws a card per container from `event: stats` messages (and the lifecycle events in
/// between), the network log from traffic events, and sends requests through the mesh with `POST /send`.
struct DashboardPage: Sendable {
    private let before: String
    private let after: String
    private let edge: String

    init(edge: String) {
        let parts = Self.template.components(separatedBy: "__BERTH_CONFIG__")
        before = parts[0]
        after = parts[1]
        var quoted = ""
        JSONString.append(edge, to: &quoted)
        self.edge = quoted
    }

    /// The page with `stats` (a `StatsSnapshot` as JSON), the `recent` traffic events (JSON objects) and the id of
    /// the last of them.
    func render(stats: String, recent: [String], lastID: UInt64) -> String {
        var config = "{\"edge\":\(edge),\"last_id\":\(lastID),\"stats\":\(stats),\"recent\":["
        config += recent.joined(separator: ",\n")
        config += "]}"
        // Inside <script>, "</" could end the element early; "<\/" means the same to JavaScript.
        return before + config.replacingOccurrences(of: "</", with: "<\\/") + after
    }

    private static let template = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Berth · mesh dashboard</title>
<style>
:root {
  --bg: #f3f5f9; --card: #fff; --ink: #172033; --muted: #6a7487; --line: #e2e6ee; --soft: #f7f8fb;
  --ok: #15803d; --warn: #b45309; --bad: #dc2626; --accent: #4f46e5;
  --mono: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
header { display: flex; align-items: center; gap: 14px; padding: 12px 24px; background: #0f172a; color: #f8fafc; }
header h1 { margin: 0; font-size: 18px; font-weight: 650; letter-spacing: .2px; }
header h1 span { color: #94a3b8; font-weight: 500; }
.conn { font-size: 12px; padding: 3px 10px; border-radius: 999px; background: #334155; color: #e2e8f0; }
.conn::before { content: ""; display: inline-block; width: 7px; height: 7px; border-radius: 50%; background: #94a3b8; margin-right: 6px; vertical-align: 1px; }
.conn.live { background: #064e3b; color: #d1fae5; }
.conn.live::before { background: #34d399; }
.conn.down { background: #7f1d1d; color: #fee2e2; }
.conn.down::before { background: #f87171; }
.totals { margin-left: auto; display: flex; gap: 22px; font-variant-numeric: tabular-nums; }
.totals div { text-align: right; }
.totals b { display: block; font-size: 16px; font-weight: 650; }
.totals small { color: #94a3b8; font-size: 11px; text-transform: uppercase; letter-spacing: .5px; }
main { padding: 16px 24px 24px; }
.toolbar { display: flex; align-items: center; gap: 10px; margin-bottom: 14px; }
.toolbar .edge { color: var(--muted); font-family: var(--mono); font-size: 13px; }
.toolbar input[type=text] { font: 13px var(--mono); padding: 7px 10px; border: 1px solid var(--line); border-radius: 8px; width: 190px; background: #fff; }
button { font: inherit; font-weight: 600; background: var(--accent); color: #fff; border: 0; border-radius: 8px; padding: 7px 14px; cursor: pointer; }
button:hover { filter: brightness(1.1); }
label.auto { color: var(--muted); font-size: 13px; display: flex; align-items: center; gap: 5px; }
#result { font: 12px var(--mono); color: var(--muted); white-space: nowrap; overflow: hidden; text-overflow: ellipsis; flex: 1; }
#result .ok { color: var(--ok); font-weight: 600; }
#result .bad { color: var(--bad); font-weight: 600; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(280px, 1fr)); gap: 12px; margin-bottom: 16px; }
.empty { color: var(--muted); padding: 18px; background: var(--card); border: 1px dashed var(--line); border-radius: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-top: 3px solid var(--tint, #64748b); border-radius: 10px;
  padding: 10px 14px 9px; box-shadow: 0 1px 2px rgba(15, 23, 42, .05); }
.card .head { display: flex; align-items: center; gap: 7px; white-space: nowrap; }
.card .cls { font-weight: 650; }
.card .inst { font-family: var(--mono); color: var(--muted); font-size: 13px; }
.card .port { font-family: var(--mono); color: var(--muted); font-size: 12px; margin-left: auto; }
.state { font-size: 10.5px; font-weight: 700; text-transform: uppercase; letter-spacing: .5px; padding: 2px 7px; border-radius: 999px; background: #e5e7eb; color: #374151; }
.state.healthy { background: #dcfce7; color: #166534; }
.state.starting, .state.restarting { background: #fef3c7; color: #92400e; }
.state.sleeping, .state.stopping { background: #e0e7ff; color: #3730a3; }
.state.exited { background: #fee2e2; color: #991b1b; }
.state.edge { background: #ffedd5; color: #9a3412; }
.metrics { display: grid; grid-template-columns: 1fr 1fr; gap: 4px 14px; margin: 8px 0 6px; }
.metric small { display: block; color: var(--muted); font-size: 10.5px; text-transform: uppercase; letter-spacing: .5px; }
.metric b { font-size: 19px; font-weight: 650; font-variant-numeric: tabular-nums; border-radius: 4px; }
.metric b.changed { animation: changed .8s ease-out; }
@keyframes changed { from { color: var(--accent); } to { color: var(--ink); } }
.foot { display: flex; align-items: center; gap: 14px; white-space: nowrap; border-top: 1px solid var(--line); padding-top: 6px; font-size: 12px; color: var(--muted); font-variant-numeric: tabular-nums; }
.foot b { color: var(--ink); font-weight: 600; }
.foot b.bad { color: var(--bad); }
.foot svg { margin-left: auto; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px; overflow: hidden; box-shadow: 0 1px 2px rgba(15, 23, 42, .05); }
.panel h2 { display: flex; align-items: center; gap: 10px; margin: 0; padding: 10px 14px; font-size: 14px; font-weight: 650; border-bottom: 1px solid var(--line); }
.panel h2 small { color: var(--muted); font-weight: 500; }
.panel h2 select { margin-left: auto; font: inherit; font-size: 12px; padding: 3px 6px; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
#dropped { color: var(--warn); font-size: 12px; font-weight: 500; }
table { width: 100%; border-collapse: collapse; font-size: 13px; }
th { text-align: left; font-size: 10.5px; font-weight: 700; text-transform: uppercase; letter-spacing: .5px; color: var(--muted); background: var(--soft); padding: 6px 12px; border-bottom: 1px solid var(--line); }
td { padding: 4px 12px; border-bottom: 1px solid #eef1f5; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.mono { font-family: var(--mono); font-size: 12.5px; }
td.num, th.num { text-align: right; }
td.path { max-width: 260px; overflow: hidden; text-overflow: ellipsis; }
td .arrow { color: var(--muted); padding: 0 4px; }
td.muted { color: var(--muted); }
.kind { font-size: 10px; font-weight: 700; text-transform: uppercase; letter-spacing: .4px; padding: 1px 6px; border-radius: 4px; }
.kind.edge { background: #ffedd5; color: #9a3412; }
.kind.sidecar { background: #e0f2fe; color: #075985; }
.kind.egress { background: #fef9c3; color: #854d0e; }
.status { font-weight: 700; }
.status.s2 { color: var(--ok); } .status.s3 { color: #0e7490; } .status.s4 { color: var(--warn); } .status.s5, .status.s0 { color: var(--bad); }
tr.fresh td { animation: fresh 1.2s ease-out; }
@keyframes fresh { from { background: #fefce8; } to { background: transparent; } }
tbody.only-edge tr.sidecar, tbody.only-sidecar tr.edge, tbody.only-edge tr.egress, tbody.only-sidecar tr.egress,
tbody.only-egress tr.edge, tbody.only-egress tr.sidecar { display: none; }
</style>
</head>
<body>
<header>
  <h1>Berth <span>mesh dashboard</span></h1>
  <span id="conn" class="conn">connecting</span>
  <div class="totals">
    <div><b id="t-containers">0</b><small>containers</small></div>
    <div><b id="t-rate">–</b><small>req/s</small></div>
    <div><b id="t-exchanges">0</b><small>requests served</small></div>
    <div><b id="t-events">0</b><small>events</small></div>
  </div>
</header>
<main>
  <div class="toolbar">
    <button id="send" type="button">Send a request through the mesh</button>
    <span class="edge" id="edge"></span><input id="path" type="text" value="/send" aria-label="path on the edge">
    <label class="auto"><input id="auto" type="checkbox"> every second</label>
    <span id="result"></span>
  </div>
  <section class="cards" id="cards"><div class="empty">Waiting for the first events from the mesh…</div></section>
  <section class="panel">
    <h2>Network Log <small id="log-count">newest first</small> <span id="dropped"></span>
      <select id="kind" aria-label="which reports to show">
        <option value="all">edge, sidecar and egress reports</option>
        <option value="sidecar">sidecar reports (served)</option>
        <option value="edge">edge reports (end to end)</option>
        <option value="egress">egress reports (a container's calls)</option>
      </select>
    </h2>
    <table>
      <thead><tr><th>Time</th><th>Report</th><th>Source → Destination</th><th>Port</th><th>Method</th><th>Path</th><th>Status</th><th class="num">Bytes in / out</th><th class="num">Latency</th></tr></thead>
      <tbody id="log"></tbody>
    </table>
  </section>
</main>
<script>
"use strict";
const CONFIG = __BERTH_CONFIG__;
const MAX_ROWS = 200;
const HISTORY = 40;
const $ = (id) => document.getElementById(id);

function bytes(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = n / 1024, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return (value < 100 ? value.toFixed(1) : value.toFixed(0)) + " " + units[unit];
}
function latency(us) {
  if (us === null || us === undefined) return "–";
  const ms = us / 1000;
  if (ms < 10) return ms.toFixed(2) + " ms";
  if (ms < 100) return ms.toFixed(1) + " ms";
  if (ms < 1000) return ms.toFixed(0) + " ms";
  return (ms / 1000).toFixed(2) + " s";
}
function count(n) { return n.toLocaleString("en-US"); }
function clock(us) {
  const d = new Date(us / 1000), two = (v) => String(v).padStart(2, "0");
  return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds()) + "." + String(d.getMilliseconds()).padStart(3, "0");
}
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
function name(endpoint) {
  if (!endpoint.class_name) return endpoint.instance_id ? "-/" + endpoint.instance_id : "-";
  return endpoint.instance_id ? endpoint.class_name + "/" + endpoint.instance_id : endpoint.class_name;
}
const PALETTE = ["#4f46e5", "#0d9488", "#db2777", "#7c3aed", "#0284c7", "#65a30d", "#c2410c"];
function tint(className) {
  if (className === "edge") return "#f59e0b";
  let hash = 0;
  for (const ch of className) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

// Cards: one per container, kept in the order edge first, then by class and instance.
const cards = new Map();

function card(c) {
  const key = c.class_name + "/" + c.instance_id;
  let entry = cards.get(key);
  if (entry) return entry;
  const root = el("article", "card");
  root.style.setProperty("--tint", tint(c.class_name));
  const head = el("div", "head");
  head.append(el("span", "cls", c.class_name), el("span", "inst", c.instance_id));
  const port = el("span", "port");
  const state = el("span", "state");
  head.append(port, state);
  const metrics = el("div", "metrics");
  const values = {};
  for (const [field, label] of [["sent", "Sent"], ["bytes_out", "Bytes Out"], ["received", "Received"], ["bytes_in", "Bytes In"]]) {
    const box = el("div", "metric");
    values[field] = el("b", "", "0");
    box.append(el("small", "", label), values[field]);
    metrics.append(box);
  }
  const foot = el("div", "foot");
  const errors = el("b"), p50 = el("b"), p99 = el("b");
  const spark = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  spark.setAttribute("width", "64"); spark.setAttribute("height", "18");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("fill", "none"); line.setAttribute("stroke", tint(c.class_name)); line.setAttribute("stroke-width", "1.5");
  spark.append(line);
  const span = (label, value) => { const s = el("span", "", label + " "); s.append(value); return s; };
  foot.append(span("errors", errors), span("p50", p50), span("p99", p99), spark);
  root.append(head, metrics, foot);
  entry = { key, root, port, state, values, errors, p50, p99, line, history: [], last: null };
  cards.set(key, entry);
  return entry;
}

function order(a, b) {
  const edgeA = a.class_name === "edge", edgeB = b.class_name === "edge";
  if (edgeA !== edgeB) return edgeA ? -1 : 1;
  return a.class_name.localeCompare(b.class_name) || a.instance_id.localeCompare(b.instance_id, undefined, { numeric: true });
}

function setState(entry, className, state) {
  const text = className === "edge" ? "edge" : (state || "unknown");
  entry.state.textContent = text;
  entry.state.className = "state " + text;
}

function renderStats(stats) {
  const list = stats.containers.slice().sort(order);
  const holder = $("cards");
  if (list.length && holder.querySelector(".empty")) holder.textContent = "";
  let exchanges = 0;
  list.forEach((c, index) => {
    const entry = card(c);
    if (holder.children[index] !== entry.root) holder.insertBefore(entry.root, holder.children[index] || null);
    entry.port.textContent = c.port ? ":" + c.port : "";
    setState(entry, c.class_name, c.state);
    const shown = { sent: count(c.sent), bytes_out: bytes(c.bytes_out), received: count(c.received), bytes_in: bytes(c.bytes_in) };
    for (const field in shown) {
      const node = entry.values[field];
      if (node.textContent !== shown[field]) {
        node.textContent = shown[field];
        node.classList.remove("changed"); void node.offsetWidth; node.classList.add("changed");
      }
    }
    entry.errors.textContent = count(c.errors);
    entry.errors.className = c.errors > 0 ? "bad" : "";
    entry.p50.textContent = latency(c.p50_us);
    entry.p99.textContent = latency(c.p99_us);
    const total = c.sent + c.received;
    entry.history.push(entry.last === null ? 0 : Math.max(0, total - entry.last));
    entry.last = total;
    if (entry.history.length > HISTORY) entry.history.shift();
    // A line needs a few points before it says anything.
    entry.line.style.visibility = entry.history.length >= 3 ? "visible" : "hidden";
    const peak = Math.max(1, ...entry.history);
    entry.line.setAttribute("points", entry.history.map((v, i) => (i * 64 / (HISTORY - 1)).toFixed(1) + "," + (16 - v / peak * 14).toFixed(1)).join(" "));
    exchanges += c.received;
  });
  $("t-containers").textContent = list.length;
  $("t-exchanges").textContent = count(exchanges);
  $("t-events").textContent = count(stats.events);
  $("t-rate").textContent = typeof stats.requests_per_second === "number" ? stats.requests_per_second.toFixed(1) : "–";
}

// The network log, newest on top, at most MAX_ROWS. A row is drawn at once when the log is quiet; in a burst, the
// rows are drawn together at most ten times a second. (A timer, not requestAnimationFrame, which stops in hidden
// tabs and headless browsers.)
let pending = [];
let scheduled = false;
let lastFlush = 0;
function addTraffic(ev) {
  pending.push(ev);
  if (pending.length > MAX_ROWS) pending = pending.slice(-MAX_ROWS);
  if (scheduled) return;
  const wait = lastFlush + 100 - performance.now();
  if (wait <= 0) { flush(); return; }
  scheduled = true;
  setTimeout(flush, wait);
}
// The rows the page came with are history, not news: they are not highlighted.
let replaying = true;
function row(ev) {
  const tr = el("tr", (replaying ? "" : "fresh ") + ev.kind);
  const route = el("td", "mono");
  route.append(el("span", "", name(ev.source)), el("span", "arrow", "→"), el("span", "", name(ev.destination)));
  const kind = el("td");
  kind.append(el("span", "kind " + ev.kind, ev.kind));
  const status = el("td", "status s" + String(ev.status).charAt(0), ev.status ? String(ev.status) : "---");
  if (ev.error) status.title = ev.error.code + " (" + ev.error.component + "): " + ev.error.message;
  const path = el("td", "mono path", ev.path);
  path.title = ev.path;
  tr.append(
    el("td", "mono muted", clock(ev.time_us)), kind, route,
    el("td", "mono", ev.destination.port ? ":" + ev.destination.port : ""),
    el("td", "mono", ev.method), path, status,
    el("td", "num", bytes(ev.bytes_in) + " / " + bytes(ev.bytes_out)),
    el("td", "num", latency(ev.latency_us)));
  return tr;
}
function flush() {
  scheduled = false;
  lastFlush = performance.now();
  const body = $("log");
  const fragment = document.createDocumentFragment();
  for (let i = pending.length - 1; i >= 0; i--) fragment.append(row(pending[i]));
  pending = [];
  body.insertBefore(fragment, body.firstChild);
  while (body.children.length > MAX_ROWS) body.lastChild.remove();
  $("log-count").textContent = "newest first · last " + body.children.length;
  replaying = false;
}

// Traffic events are numbered; the stream starts after the last one the page came with, and on reconnecting the
// browser asks for those after the last it got (Last-Event-ID).
let lastID = CONFIG.last_id;
function connect() {
  const source = new EventSource("events?after=" + lastID);
  source.onopen = () => { $("conn").textContent = "live"; $("conn").className = "conn live"; };
  source.onerror = () => { $("conn").textContent = "reconnecting"; $("conn").className = "conn down"; };
  source.onmessage = (message) => {
    if (message.lastEventId) {
      const id = Number(message.lastEventId);
      if (id <= lastID) return;
      lastID = id;
    }
    const ev = JSON.parse(message.data);
    if (ev.event === "traffic") {
      addTraffic(ev);
    } else if (ev.event === "lifecycle") {
      const entry = cards.get(ev.container.class_name + "/" + ev.container.instance_id);
      if (entry) setState(entry, ev.container.class_name, ev.state);
    }
  };
  source.addEventListener("stats", (message) => renderStats(JSON.parse(message.data)));
  let dropped = 0;
  source.addEventListener("dropped", (message) => {
    dropped += JSON.parse(message.data).dropped;
    $("dropped").textContent = count(dropped) + " events skipped: this browser fell behind";
  });
}

async function send() {
  const path = $("path").value.trim() || "/send";
  const result = $("result");
  try {
    const response = await fetch("send?path=" + encodeURIComponent(path), { method: "POST" });
    const text = (await response.text()).trim();
    const via = response.headers.get("x-berth-path");
    result.textContent = "";
    result.append(el("span", response.ok ? "ok" : "bad", response.status + " "), (via ? via + " · " : "") + text.slice(0, 200));
  } catch (error) {
    result.textContent = "";
    result.append(el("span", "bad", "failed "), String(error));
  }
}

$("edge").textContent = CONFIG.edge.replace(/\/$/, "");
$("send").addEventListener("click", send);
$("path").addEventListener("keydown", (event) => { if (event.key === "Enter") send(); });
let timer = null;
$("auto").addEventListener("change", (event) => {
  clearInterval(timer);
  timer = event.target.checked ? setInterval(send, 1000) : null;
});
$("kind").addEventListener("change", (event) => {
  $("log").className = event.target.value === "all" ? "" : "only-" + event.target.value;
});
renderStats(CONFIG.stats);
pending = CONFIG.recent.slice(-MAX_ROWS);
flush();
connect();
</script>
</body>
</html>
"""#
}

/// JSON string literals, for values put into the page.
enum JSONString {
    /// Appends `value` quoted, with quotes, backslashes and control characters escaped (RFC 8259 §7).
    static func append(_ value: String, to output: inout String) {
        output += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": output += "\\\""
            case "\\": output += "\\\\"
            case "\u{00}"..."\u{1F}", "\u{2028}", "\u{2029}":
                let hex = String(scalar.value, radix: 16)
                output += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: output.unicodeScalars.append(scalar)
            }
        }
        output += "\""
    }
}
