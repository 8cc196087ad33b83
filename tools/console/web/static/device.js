// The device page: status, charts (uPlot, downsampled on the server), events, commands.
"use strict";
(function () {
  const device = document.body.dataset.device;
  const base = "/api/device/" + encodeURIComponent(device);
  const MARK_COLOURS = {restart: "#555555", oom: "#000000", alert: "#d62728",
                        low_memory: "#ff9896", leak_suspected: "#8c564b", outage: "#cccccc"};
  let span = null, range = null, history = null, memory = null, pause = null;

  function chartWidth() { return Math.max(480, document.querySelector(".charts").clientWidth - 20); }

  function drawMarks(u, withCollections) {
    if (!history) return;
    const ctx = u.ctx, top = u.bbox.top, height = u.bbox.height;
    const x = ts => u.valToPos(ts, "x", true);
    ctx.save();
    ctx.beginPath(); ctx.rect(u.bbox.left, top, u.bbox.width, height); ctx.clip();
    for (const s of history.spans) {
      ctx.fillStyle = s.kind === "outage" ? "rgba(150,150,150,0.25)" : "rgba(255,152,150,0.25)";
      ctx.fillRect(x(s.from), top, Math.max(1, x(s.to) - x(s.from)), height);
    }
    for (const p of history.points) {
      ctx.strokeStyle = MARK_COLOURS[p.kind] || "#d62728";
      ctx.lineWidth = p.kind === "oom" ? 3 : 2;
      ctx.setLineDash(p.kind === "restart" ? [4, 4] : []);
      ctx.beginPath(); ctx.moveTo(x(p.ts), top); ctx.lineTo(x(p.ts), top + height); ctx.stroke();
    }
    ctx.setLineDash([]);
    if (withCollections) {
      for (const c of history.collections) {
        if (c.y_kb == null) continue;
        ctx.fillStyle = c.colour; ctx.strokeStyle = "#000"; ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.arc(x(c.ts), u.valToPos(c.y_kb / 1024, "y", true), 4 * devicePixelRatio, 0, 2 * Math.PI);
        ctx.fill(); ctx.stroke();
      }
    }
    ctx.restore();
  }

  function zoomHook(u) {
    if (u.select.width < 5) return;
    const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
    u.setSelect({left: 0, top: 0, width: 0, height: 0}, false);
    range = [from, to];
    load();
  }

  function axisX() {
    return {label: "time (" + GC.zone() + ")", values: [
      [3600 * 24 * 365, "{YYYY}", null, null, null, null, null, null, 1],
      [3600 * 24 * 28, "{MMM}", "\n{YYYY}", null, null, null, null, null, 1],
      [3600 * 24, "{M}/{D}", "\n{YYYY}", null, null, null, null, null, 1],
      [3600, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
      [60, "{HH}:{mm}", "\n{YYYY}-{MM}-{DD}", null, "\n{MM}-{DD}", null, null, null, 1],
      [1, "{HH}:{mm}:{ss}", "\n{YYYY}-{MM}-{DD} {HH}:{mm}", null, "\n{MM}-{DD} {HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
      [0.001, ":{ss}.{fff}", "\n{YYYY}-{MM}-{DD} {HH}:{mm}", null, "\n{MM}-{DD} {HH}:{mm}", null, "\n{HH}:{mm}", null, 1],
    ]};
  }

  function makeCharts() {
    const width = chartWidth();
    memory = new uPlot({
      title: "Memory (MB)", width, height: 300, cursor: {drag: {x: true, y: false, setScale: false}},
      scales: {x: {time: true}, free: {}},
      series: [{}, {label: "RSS", stroke: "#1f77b4", width: 2, points: {show: false}},
               {label: "ceiling", stroke: "#d62728", dash: [8, 4], width: 1.5},
               {label: "free memory (right axis)", stroke: "#8c8c00", width: 1, scale: "free"}],
      axes: [axisX(), {label: "MB"}, {scale: "free", side: 1, grid: {show: false}, label: "free MB"}],
      hooks: {draw: [u => drawMarks(u, true)], setSelect: [zoomHook]},
    }, [[], [], [], []], document.getElementById("chart-memory"));
    pause = new uPlot({
      title: "Longest gc pause per point (ms)", width, height: 160,
      cursor: {drag: {x: true, y: false, setScale: false}}, scales: {x: {time: true}},
      series: [{}, {label: "pause ms", stroke: "#9467bd", fill: "rgba(148,103,189,0.15)", width: 1}],
      axes: [axisX(), {label: "ms"}],
      hooks: {draw: [u => drawMarks(u, false)], setSelect: [zoomHook]},
    }, [[], []], document.getElementById("chart-pause"));
  }

  function legend() {
    const rules = new Map();
    for (const c of history.collections) rules.set(c.rule, c.colour);
    const kinds = new Set(history.points.map(p => p.kind).concat(history.spans.map(s => s.kind)));
    document.getElementById("legend").innerHTML =
      Array.from(rules).map(([r, c]) => `<span class="key"><i class="dot" style="background:${c}"></i>collect: ${GC.esc(r)}</span>`).join("") +
      Array.from(kinds).map(k => `<span class="key"><i class="${k === "outage" || k === "low_memory" ? "band" : "line"}" style="background:${MARK_COLOURS[k] || "#d62728"}"></i>${GC.esc(k.replace("_", " "))}</span>`).join("");
  }

  async function load() {
    const now = Date.now() / 1000;
    let query = "";
    if (range) query = `?since=${range[0]}&until=${range[1]}`;
    else if (span) query = `?since=${now - span}&until=${now}`;
    else if (span === 0) query = `?since=0&until=${now}`;
    const resp = await fetch(base + "/history" + query, {credentials: "same-origin"});
    if (!resp.ok) return;
    history = await resp.json();
    const s = history.series;
    const mbs = v => v == null ? null : v / 1024;
    const ceiling = s.t.map((t, i) => s.rss_kb[i] == null || history.ceiling_kb == null ? null : history.ceiling_kb / 1024);
    const xs = {min: history.since, max: history.until};
    memory.batch(() => {
      memory.setData([s.t, s.rss_kb.map(mbs), ceiling, s.free_kb.map(mbs)], false);
      memory.setScale("x", xs);
    });
    pause.batch(() => { pause.setData([s.t, s.pause_ms], false); pause.setScale("x", xs); });
    legend();
    document.getElementById("range").textContent = `${GC.when(history.since)} – ${GC.when(history.until)} (${GC.zone()})`;
    document.getElementById("shipped").textContent =
      `${s.t.length} points a series for ${s.raw} samples` + (s.bucket_s ? ` (worst case per ${s.bucket_s.toFixed(0)} s)` : "") +
      `; ${history.collections.length} collections, ${history.points.length} marks, ${history.spans.length} spans`;
    document.body.dataset.points = String(s.t.length);
    document.body.dataset.drawn = String(Date.now());
  }

  async function refresh() {
    const resp = await fetch(base, {credentials: "same-origin"});
    if (!resp.ok) { document.getElementById("state").textContent = "unknown device"; return; }
    const info = await resp.json();
    const r = info.row, st = info.status;
    document.getElementById("state").textContent = r.state + (r.reason && r.reason !== r.state ? ` (${r.reason})` : "");
    document.getElementById("state").className = "state state-" + r.state;
    document.getElementById("forget").hidden = r.state === "online";
    const fields = [["model", r.model], ["RSS", GC.mb(r.rss_kb)], ["ceiling", GC.mb(r.ceiling_kb)],
      ["headroom", GC.mb(r.headroom_kb)], ["free memory", GC.mb(r.free_kb)],
      ["last seen", GC.ago(r.last_seen, Date.now() / 1000) + " ago"],
      ["buffered / dropped", `${r.buffered == null ? "-" : r.buffered} / ${r.dropped == null ? "-" : r.dropped}`],
      ["missing messages", r.missing == null ? "-" : r.missing],
      ["agent", st.agent], ["python", st.python], ["gc", st.gc_flavour], ["profile", st.profile],
      ["uptime", st.uptime_s == null ? "-" : GC.duration(st.uptime_s)]];
    if (r.leak_kb_per_hour != null) fields.push(["leak rate", GC.mb(r.leak_kb_per_hour) + " per hour"]);
    if (r.ceiling_eta_s != null) fields.push(["ceiling reached in", GC.duration(r.ceiling_eta_s)]);
    document.getElementById("status").innerHTML = fields.map(([k, v]) =>
      `<div><dt>${GC.esc(k)}</dt><dd data-field="${GC.esc(k)}">${GC.esc(v == null ? "-" : v)}</dd></div>`).join("");
    document.getElementById("device-alerts").innerHTML = info.alerts.length ?
      `<h2>Alerts</h2><table id="alerts"><tbody>${GC.alertRows(info.alerts, false)}</tbody></table>` : "";
    document.querySelector("#events tbody").innerHTML = info.events.slice().map(e =>
      `<tr><td>${GC.when(e.ts)}</td><td>${GC.esc(e.event)}</td>` +
      `<td>${e.rule ? `<span class="chip" style="border-color:${e.colour || "#999"};color:${e.colour || "#333"}">${GC.esc(e.rule)}</span>` : ""}</td>` +
      `<td>${e.reclaimed_kb == null ? "" : GC.mb(e.reclaimed_kb)}</td><td>${e.duration_ms == null ? "" : GC.esc(e.duration_ms + " ms")}</td>` +
      `<td class="quiet">${GC.esc(e.detail || e.error || e.reason || e.name || "")}</td></tr>`).join("");
    document.getElementById("command-form").hidden = !info.can_command;
    document.getElementById("command-readonly").hidden = info.can_command;
    document.querySelector("#commands tbody").innerHTML = info.commands.map(c =>
      `<tr><td>${GC.when(c.sent)}</td><td>${GC.esc(c.who || "command line")}</td><td>${GC.esc(c.cmd)} ${GC.esc(c.args)}</td>` +
      `<td>${c.ok == null ? "waiting" : c.ok ? "ok" : "refused"}</td></tr>`).join("");
  }

  document.querySelector(".ranges").addEventListener("click", ev => {
    const b = ev.target.closest("button[data-range]");
    if (!b) return;
    span = Number(b.dataset.range); range = null;
    for (const other of document.querySelectorAll(".ranges button")) other.classList.toggle("on", other === b);
    load();
  });
  document.getElementById("command-form").addEventListener("submit", async ev => {
    ev.preventDefault();
    const out = document.getElementById("cmd-result");
    try {
      const args = document.getElementById("cmd-args").value.trim();
      const sent = await GC.post(base + "/command", {cmd: document.getElementById("cmd").value,
                                                     args: args ? JSON.parse(args) : {}});
      out.textContent = `sent ${sent.id} as ${sent.by}`;
      refresh();
    } catch (e) { out.textContent = e.message; }
  });
  GC.bindAlertButtons(document.getElementById("device-alerts"), refresh);
  document.getElementById("forget").addEventListener("click", async () => {
    if (!confirm(`Forget ${device} and all its history? It comes back if it reports again.`)) return;
    try { await GC.post(base + "/forget", {}); location.href = "/"; } catch (e) { alert(e.message); }
  });
  window.addEventListener("resize", () => {
    memory.setSize({width: chartWidth(), height: 300}); pause.setSize({width: chartWidth(), height: 160});
  });
  makeCharts();
  refresh(); load();
  setInterval(refresh, 5000);
  setInterval(() => { if (!range) load(); }, 10000);
})();
