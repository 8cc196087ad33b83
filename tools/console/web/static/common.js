// Shared by the fleet and device pages: formatting, escaping, CSRF-safe POSTs.
"use strict";
const GC = {
  csrf: document.querySelector('meta[name="csrf-token"]').content,
  esc(text) {
    return String(text == null ? "" : text).replace(/[&<>"']/g,
      c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
  },
  mb(kb) {
    if (kb == null) return "-";
    if (kb < 1000) return Math.round(kb) + "K";
    if (kb < 1024 * 1000) return (kb >= 10240 ? (kb / 1024).toFixed(0) : (kb / 1024).toFixed(1)) + "M";
    return (kb / 1048576).toFixed(1) + "G";
  },
  ago(ts, now) {
    if (!ts) return "-";
    const age = Math.max(0, now - ts);
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]])
      if (age >= size) return Math.floor(age / size) + unit;
    return Math.floor(age) + "s";
  },
  duration(s) {
    if (s == null) return "-";
    if (s >= 86400) return (s / 86400).toFixed(1) + " d";
    if (s >= 3600) return (s / 3600).toFixed(1) + " h";
    if (s < 60) return Math.round(s) + " s";   // a fresh device read "uptime 0 min"
    return Math.round(s / 60) + " min";
  },
  when(ts) {
    const d = new Date(ts * 1000);
    return d.toLocaleString(undefined, {year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false});
  },
  zone() { return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time"; },
  async post(url, body) {
    const resp = await fetch(url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": GC.csrf},
      body: JSON.stringify(body)});
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    return data;
  },
  alertRows(alerts, withDevice) {
    return alerts.map(a => `<tr class="${a.acked ? "acked" : "open"}" data-device="${GC.esc(a.device)}" data-alert="${GC.esc(a.alert)}">` +
      (withDevice ? `<td><a href="/device/${encodeURIComponent(a.device)}">${GC.esc(a.device)}</a></td>` : "") +
      `<td class="kind">${GC.esc(a.alert)}</td><td>${GC.esc(a.detail)}</td>` +
      `<td>${a.since ? GC.when(a.since) : "-"}</td><td>` +
      (a.acked ? `<span class="ackd">acknowledged by ${GC.esc(a.acked_by)}</span>`
               : `<button class="ack" data-device="${GC.esc(a.device)}" data-alert="${GC.esc(a.alert)}">acknowledge</button>`) +
      (a.silenced_until ? ` <span class="quiet">silenced until ${GC.when(a.silenced_until)}</span>`
               : ` <button class="silence" data-device="${GC.esc(a.device)}" data-alert="${GC.esc(a.alert)}">silence 1 h</button>`) +
      `</td></tr>`).join("");
  },
  bindAlertButtons(root, after) {
    root.addEventListener("click", async ev => {
      const b = ev.target.closest("button.ack, button.silence");
      if (!b) return;
      b.disabled = true;
      try {
        if (b.classList.contains("ack"))
          await GC.post("/api/alerts/ack", {device: b.dataset.device, alert: b.dataset.alert});
        else
          await GC.post("/api/alerts/silence", {device: b.dataset.device, alert: b.dataset.alert, seconds: 3600});
        if (after) after();
      } catch (e) { b.disabled = false; alert(e.message); }
    });
  },
};
