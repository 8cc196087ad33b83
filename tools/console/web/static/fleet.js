// The fleet page: one server-sent-events stream; the server sends only rows that changed.
"use strict";
(function () {
  const rows = new Map();
  let alerts = [], counts = {}, serverOffset = 0, updates = 0, pending = false;
  const tbody = document.querySelector("#fleet tbody");
  const fText = document.getElementById("f-text"), fModel = document.getElementById("f-model"),
        fState = document.getElementById("f-state");

  function matches(r) {
    const text = fText.value.trim();
    if (text) {
      const glob = /[*?[]/.test(text) ? text : "*" + text + "*";
      let re = null;
      try {
        re = new RegExp("^" + glob.replace(/[.+^${}()|\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
      } catch (e) {   // a half-typed "[": match the text as it is, never stop redrawing
        re = null;
      }
      if (re ? !re.test(r.device) : !r.device.includes(text)) return false;
    }
    if (fModel.value && (r.model || "") !== fModel.value) return false;
    if (fState.value === "alerting") return Object.keys(r.alerts).length > 0;
    return !fState.value || r.state === fState.value;
  }

  function bar(r) {
    if (!r.ceiling_kb || r.rss_kb == null) return GC.mb(r.rss_kb);
    const pct = Math.min(100, 100 * r.rss_kb / r.ceiling_kb);
    const level = pct >= 90 ? "bad" : pct >= 80 ? "warn" : "ok";
    return `<div class="bar"><div class="fill ${level}" style="width:${pct.toFixed(1)}%"></div>` +
           `<span>${GC.mb(r.rss_kb)} / ${GC.mb(r.ceiling_kb)}</span></div>`;
  }

  // Each device once, its applications (DEVICE@APP ids, docs/web-console.md) right after it:
  // [label, row or null for a device known only by its applications, is an application].
  function grouped(list) {
    const apps = new Map(), plain = new Map();
    for (const r of list) {
      if (r.app) { if (!apps.has(r.host)) apps.set(r.host, []); apps.get(r.host).push(r); }
      else plain.set(r.device, r);
    }
    const out = [], done = new Set();
    for (const r of list) {
      const key = r.app ? r.host : r.device;
      if (done.has(key)) continue;
      done.add(key);
      if (apps.has(key)) {
        out.push([key, plain.get(key) || null, false]);
        for (const a of apps.get(key)) out.push(["@" + a.app, a, true]);
      } else out.push([key, r, false]);
    }
    return out;
  }

  function hostHtml(host) {
    return `<tr class="host" data-host="${GC.esc(host)}"><td colspan="12">${GC.esc(host)}</td></tr>`;
  }

  function rowHtml(r, now, label, isApp) {
    const rules = Object.entries(r.rules).map(([rule, n]) =>
      `<span class="chip" style="border-color:${r.rule_colours[rule]};color:${r.rule_colours[rule]}">${GC.esc(rule)} ${n}</span>`).join(" ");
    const lastGc = r.last_collect_ts ? `${GC.ago(r.last_collect_ts, now)} ago` +
      (r.last_reclaimed_kb > 0 ? ` −${GC.mb(r.last_reclaimed_kb)}` : "") : "-";
    const leak = r.leak_kb_per_hour != null ? `${GC.mb(r.leak_kb_per_hour)}/h` +
      (r.ceiling_eta_s != null ? `, ceiling in ${GC.duration(r.ceiling_eta_s)}` : "") : "";
    return `<tr data-device="${GC.esc(r.device)}" class="state-${r.state}${isApp ? " app" : ""}">` +
      `<td><a href="/device/${encodeURIComponent(r.device)}">${GC.esc(label)}</a></td>` +
      `<td>${GC.esc(r.model || "-")}</td><td class="state">${GC.esc(r.state)}</td>` +
      `<td>${bar(r)}</td><td>${GC.mb(r.headroom_kb)}</td><td>${GC.mb(r.free_kb)}</td>` +
      `<td>${lastGc}</td><td>${rules}</td>` +
      `<td>${Object.keys(r.alerts).map(k => `<span class="alert">${GC.esc(k)}</span>`).join(" ")}</td>` +
      `<td>${leak}</td><td>${r.missing == null ? "-" : r.missing}</td>` +
      `<td class="seen">${GC.ago(r.last_seen, now)}</td></tr>`;
  }

  function render() {
    pending = false;
    const now = Date.now() / 1000 + serverOffset;
    const all = Array.from(rows.values());
    all.sort((a, b) => b.risk - a.risk || (a.device < b.device ? -1 : 1));
    const shown = all.filter(matches);
    tbody.innerHTML = grouped(shown).map(([label, r, isApp]) =>
      r ? rowHtml(r, now, label, isApp) : hostHtml(label)).join("");
    document.getElementById("shown").textContent = `${shown.length} of ${all.length} shown`;
    document.getElementById("counts").textContent =
      `${counts.devices || 0} devices: ${counts.online || 0} online, ${counts.offline || 0} offline, ` +
      `${counts.stopped || 0} stopped; ${counts.alerting || 0} with alerts`;
    const models = Array.from(new Set(all.map(r => r.model).filter(Boolean))).sort();
    const have = Array.from(fModel.options).slice(1).map(o => o.value);
    if (models.join() !== have.join()) {
      const keep = fModel.value;
      fModel.innerHTML = '<option value="">all</option>' +
        models.map(m => `<option>${GC.esc(m)}</option>`).join("");
      fModel.value = keep;
    }
    document.querySelector("#alerts tbody").innerHTML = GC.alertRows(alerts, true);
    const open = alerts.filter(a => !a.acked).length;
    document.getElementById("alert-count").textContent = alerts.length ? `(${open} open, ${alerts.length - open} acknowledged)` : "";
    document.getElementById("no-alerts").hidden = alerts.length > 0;
    document.getElementById("alerts").hidden = alerts.length === 0;
    document.body.dataset.updates = String(updates);
    document.body.dataset.devices = String(all.length);
  }

  function schedule() { if (!pending) { pending = true; requestAnimationFrame(render); } }

  function connect() {
    const live = document.getElementById("live");
    const source = new EventSource("/api/stream");
    source.onopen = () => { live.textContent = "live"; live.className = "live on"; };
    source.onmessage = ev => {
      const update = JSON.parse(ev.data);
      if (update.full) rows.clear();
      for (const r of update.rows) rows.set(r.device, r);
      for (const name of update.removed) rows.delete(name);
      alerts = update.alerts; counts = update.counts;
      serverOffset = update.now - Date.now() / 1000;
      updates += 1;
      window.gcLastUpdate = {at: Date.now(), rows: update.rows.map(r => [r.device, r.last_seen])};
      schedule();
    };
    source.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
  }

  for (const el of [fText, fModel, fState]) el.addEventListener("input", schedule);
  GC.bindAlertButtons(document.getElementById("alerts"), null);
  setInterval(schedule, 1000);   // "seen" ages every second even when nothing changes
  connect();
})();
