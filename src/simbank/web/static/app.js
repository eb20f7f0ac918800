// simbank dashboard: one page that speaks the MQTT contract through the relay's WebSocket.
// No build step, no dependencies. Broker data only ever reaches the DOM as textContent.
"use strict";

(() => {
  const MAX_EVENTS = 200;
  const MAX_NOTICES = 6;

  // -- state ---------------------------------------------------------------------------------
  const gateways = new Map(); // id -> {state, info, modems: Map, sims: Map, traffic, asked}
  const cards = new Map(); // key -> {json, node}: cards are rebuilt only when their data changes
  const pending = new Map(); // request id -> {label, notice, silent, gateway, command}
  let ws = null;
  let credentials = null; // kept in memory only, to reconnect after a dropped connection
  let loggedIn = false;
  let leaving = false;
  let requestCounter = 0;
  let renderQueued = false;
  let reconnectDelay = 1000;
  let eventCount = 0;

  const $ = (id) => document.getElementById(id);

  // Build an element: h("div", {class: "x", dataset: {a: "b"}}, "text", child...).
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "dataset") Object.assign(el.dataset, value);
      else if (name === "onclick") el.addEventListener("click", value);
      else if (name === "title") el.title = String(value);
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function gateway(id) {
    let gw = gateways.get(id);
    if (!gw) {
      gw = { state: null, info: null, modems: new Map(), sims: new Map(), traffic: null, asked: false };
      gateways.set(id, gw);
    }
    return gw;
  }

  // -- formatting ------------------------------------------------------------------------------
  // A time stamp as the contract carries it: ISO 8601, or (event evidence) epoch seconds.
  function toDate(value) {
    return typeof value === "number" ? new Date(value * 1000) : new Date(value);
  }

  function time(iso) {
    const d = toDate(iso);
    return Number.isNaN(d.getTime()) ? String(iso ?? "") : d.toLocaleTimeString([], { hour12: false });
  }

  function dateTime(iso) {
    const d = toDate(iso);
    if (Number.isNaN(d.getTime())) return String(iso ?? "");
    return d.toLocaleString([], { dateStyle: "medium", timeStyle: "medium", hour12: false });
  }

  function duration(seconds) {
    const s = Math.round(Number(seconds) || 0);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  const words = (text) => String(text ?? "").replaceAll("_", " ");

  function plain(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function badge(state, extraClass) {
    return h("span", { class: `badge s-${String(state ?? "unknown").replace(/[^a-z_]/g, "")} ${extraClass || ""}` },
      words(state ?? "unknown"));
  }

  // -- the WebSocket ---------------------------------------------------------------------------
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(`${scheme}//${location.host}/ws`);
    const socket = ws;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "login", ...credentials }));
    });
    socket.addEventListener("message", (ev) => {
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      handle(frame);
    });
    socket.addEventListener("close", (ev) => {
      if (socket !== ws) return;
      ws = null;
      failPending("the connection to the dashboard server closed");
      if (leaving || !credentials) return;
      if (loggedIn) {
        setConn("reconnecting", "reconnecting…");
        showBanner("Connection lost: reconnecting…");
        setTimeout(() => { if (credentials && !ws) connect(); }, reconnectDelay);
        reconnectDelay = Math.min(reconnectDelay * 2, 15000);
      } else {
        // 4000-4999: the relay's own reasons ("too many failed logins", "no login")
        loginFailed(ev.code >= 4000 && ev.code < 5000 && ev.reason
          ? `The dashboard server closed the connection: ${ev.reason}`
          : "cannot reach the dashboard server (or it has too many sessions open)");
      }
    });
  }

  function send(frame) {
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(frame));
    return true;
  }

  function handle(frame) {
    switch (frame.type) {
      case "login_ok":
        loggedIn = true;
        reconnectDelay = 1000;
        hideBanner();
        setConn("in", `${frame.username}`);
        $("login-view").hidden = true;
        $("dash-view").hidden = false;
        $("logout").hidden = false;
        for (const gw of gateways.values()) gw.asked = false;
        scheduleRender();
        break;
      case "login_failed":
        loginFailed(frame.error);
        break;
      case "login_delayed":
        $("login-error").textContent =
          `Too many failed logins from this address: trying in ${frame.seconds} s…`;
        $("login-error").hidden = false;
        break;
      case "message":
        take(frame);
        break;
      case "response":
        answered(frame);
        break;
      case "refused":
        refused(frame);
        break;
      case "error":
        if (frame.id && pending.has(frame.id)) refused({ ...frame, reason: "error" });
        else notice("error", `The dashboard server said: ${frame.error}`);
        break;
      case "broker_lost":
        showBanner(`Lost the broker: ${frame.error}`);
        break;
      default:
        break;
    }
  }

  function take(frame) {
    const gw = gateway(frame.gateway);
    const p = frame.payload;
    switch (frame.kind) {
      case "state":
        gw.state = p ? p.state : null;
        gw.reason = p ? p.reason || null : null;
        break;
      case "info":
        gw.info = p;
        break;
      case "modem":
        if (p) gw.modems.set(frame.key, p);
        else gw.modems.delete(frame.key);
        break;
      case "sim":
        if (p) gw.sims.set(frame.key, p);
        else gw.sims.delete(frame.key);
        break;
      case "event":
        if (p) addEvent(frame.gateway, p);
        break;
      default:
        return;
    }
    if (!p && frame.kind === "state" && !gw.modems.size && !gw.sims.size) gateways.delete(frame.gateway);
    scheduleRender();
  }

  // -- requests --------------------------------------------------------------------------------
  function request(gatewayId, command, payload, label, { silent = false } = {}) {
    requestCounter += 1;
    const id = `r${requestCounter}`;
    const entry = { label, silent, gateway: gatewayId, command, notice: null };
    if (!send({ type: "request", id, gateway: gatewayId, command, payload })) {
      if (!silent) notice("error", `${label}: not connected`);
      return;
    }
    pending.set(id, entry);
    if (!silent) entry.notice = notice("pending", `${label}: sent…`);
  }

  function answered(frame) {
    const entry = pending.get(frame.id);
    if (!entry) return;
    pending.delete(frame.id);
    const r = frame.response || {};
    if (frame.command === "status" && r.status === "ok" && r.data && r.data.traffic) {
      gateway(frame.gateway).traffic = r.data.traffic;
      scheduleRender();
    }
    if (entry.silent) return;
    if (r.status === "ok") {
      settle(entry, "ok", `${entry.label}: done${outcome(frame.command, r.data || {})}`);
    } else {
      settle(entry, "error", `${entry.label}: ${words(r.code || "error")}: ${r.error || ""}`);
    }
  }

  function outcome(command, data) {
    if (command === "sim/release") return ` (was ${words(data.was)}, now ${words(data.state)})`;
    if (command === "sim/rotate") {
      return data.rotated ? ` (slot ${data.slot}: ${data.iccid})` : ` (stayed: ${words(data.why || "no other SIM")})`;
    }
    if (command === "sim/disable" || command === "sim/enable") return ` (now ${words(data.state)})`;
    if (command === "traffic/pause" || command === "traffic/resume") {
      return data.paused ? " (traffic paused)" : " (traffic flowing)";
    }
    return "";
  }

  function refused(frame) {
    const entry = pending.get(frame.id);
    if (!entry) return;
    pending.delete(frame.id);
    if (entry.command === "status") {
      gateway(entry.gateway).traffic = null;
      scheduleRender();
    }
    if (entry.silent) return;
    const kind = frame.reason === "not_authorized" ? "refused" : "error";
    const head = frame.reason === "not_authorized" ? "Refused" : "Not done";
    settle(entry, kind, `${head} — ${entry.label}: ${frame.error}`);
  }

  function failPending(why) {
    for (const entry of pending.values()) {
      if (!entry.silent) settle(entry, "error", `${entry.label}: ${why}`);
    }
    pending.clear();
  }

  // -- notices ---------------------------------------------------------------------------------
  function notice(kind, text) {
    const list = $("notices");
    const item = h("li", { class: `notice n-${kind}` },
      h("span", { class: "notice-text" }, text),
      h("button", { type: "button", class: "quiet close", "aria-label": "dismiss", onclick: () => item.remove() }, "×"));
    list.prepend(item);
    while (list.children.length > MAX_NOTICES) list.lastElementChild.remove();
    return item;
  }

  function settle(entry, kind, text) {
    if (entry.notice && entry.notice.isConnected) {
      entry.notice.className = `notice n-${kind}`;
      entry.notice.querySelector(".notice-text").textContent = text;
    } else {
      notice(kind, text);
    }
  }

  function showBanner(text) {
    $("banner").textContent = text;
    $("banner").hidden = false;
  }

  function hideBanner() {
    $("banner").hidden = true;
  }

  function setConn(state, text) {
    $("conn").dataset.state = state;
    $("conn").textContent = text;
  }

  // -- the confirmation dialog -----------------------------------------------------------------
  let confirmAction = null;

  function ask({ title, text, note, noteLabel, okLabel }, action) {
    $("confirm-title").textContent = title;
    $("confirm-text").textContent = text;
    $("confirm-note-row").hidden = !note;
    $("confirm-note-label").textContent = noteLabel || "Note";
    $("confirm-note").value = "";
    $("confirm-note").required = note === "required";
    $("confirm-ok").textContent = okLabel || "OK";
    confirmAction = action;
    $("confirm").hidden = false;
    (note ? $("confirm-note") : $("confirm-ok")).focus();
  }

  function closeDialog() {
    $("confirm").hidden = true;
    confirmAction = null;
  }

  function confirmDialog() {
    const value = $("confirm-note").value.trim();
    if ($("confirm-note").required && !value) {
      $("confirm-note").setAttribute("aria-invalid", "true");
      $("confirm-note").focus();
      return;
    }
    $("confirm-note").removeAttribute("aria-invalid");
    const action = confirmAction;
    closeDialog();
    if (action) action(value);
  }

  // -- actions ---------------------------------------------------------------------------------
  function releaseSim(gw, iccid) {
    ask({ title: `Release SIM ${iccid}?`, text: "Only after the carrier confirmed the SIM is fine: it goes back into service.", note: "required", noteLabel: "Note (e.g. the carrier's ticket)", okLabel: "Release" },
      (note) => request(gw, "sim/release", { iccid, note }, `Release ${iccid}`));
  }

  function disableSim(gw, iccid) {
    ask({ title: `Disable SIM ${iccid}?`, text: "It carries no traffic until enabled again.", okLabel: "Disable" },
      () => request(gw, "sim/disable", { iccid }, `Disable ${iccid}`));
  }

  function enableSim(gw, iccid) {
    request(gw, "sim/enable", { iccid }, `Enable ${iccid}`);
  }

  function rotateModem(gw, modem) {
    ask({ title: `Rotate modem ${modem}?`, text: "The modem switches to its next usable SIM slot.", okLabel: "Rotate" },
      () => request(gw, "sim/rotate", { modem }, `Rotate ${modem}`));
  }

  function pauseTraffic(gw) {
    ask({ title: `Pause traffic on ${gw}?`, text: "Calls and SMS are refused until traffic is resumed.", note: "optional", noteLabel: "Reason", okLabel: "Pause" },
      (reason) => request(gw, "traffic/pause", reason ? { reason } : {}, `Pause traffic on ${gw}`));
  }

  function resumeTraffic(gw) {
    ask({ title: `Resume traffic on ${gw}?`, text: "Also closes an open circuit breaker.", note: "optional", noteLabel: "Reason", okLabel: "Resume" },
      (reason) => request(gw, "traffic/resume", reason ? { reason } : {}, `Resume traffic on ${gw}`));
  }

  // -- events ----------------------------------------------------------------------------------
  const EVENT_FIELDS = ["modem", "iccid", "slot", "previous", "reason", "was", "note", "actor", "blocks", "state", "domain"];

  function addEvent(gw, ev) {
    eventCount += 1;
    const facts = EVENT_FIELDS.filter((k) => ev[k] !== undefined && ev[k] !== null)
      .map((k) => h("span", { class: "fact" }, h("span", { class: "fact-k" }, words(k)), " ", plain(ev[k])));
    const tone = /blocked|failed|locked|circuit_opened/.test(ev.type) ? "bad"
      : /suspected|offline|quota|low/.test(ev.type) ? "warn" : /released|online|closed|restored/.test(ev.type) ? "good" : "info";
    const item = h("li", { class: `event e-${tone}`, dataset: { type: String(ev.type), gateway: gw } },
      h("div", { class: "event-head" },
        h("time", { datetime: String(ev.ts ?? "") }, time(ev.ts)),
        h("span", { class: "event-type" }, words(ev.type)),
        h("span", { class: "event-gw" }, gw)),
      facts.length ? h("div", { class: "event-facts" }, facts) : null);
    const list = $("events");
    list.prepend(item);
    while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
    $("no-events").hidden = true;
    if (ev.type === "circuit_opened" || ev.type === "circuit_closed") {
      const g = gateway(gw);
      g.traffic = { ...(g.traffic || {}), paused: ev.type === "circuit_opened", circuit_open: ev.type === "circuit_opened" && ev.reason === "blocks" };
    }
  }

  // -- rendering -------------------------------------------------------------------------------
  function scheduleRender() {
    if (renderQueued) return;
    renderQueued = true;
    setTimeout(() => {
      renderQueued = false;
      render();
    }, 0);
  }

  function cached(key, data, build) {
    const json = JSON.stringify(data);
    const hit = cards.get(key);
    if (hit && hit.json === json) return hit.node;
    const node = build();
    cards.set(key, { json, node });
    return node;
  }

  // A degraded gateway (its ledger cannot book) still hears and answers requests.
  const isUp = (gw) => gw.state === "online" || gw.state === "degraded";

  function render() {
    const root = $("gateways");
    const ids = [...gateways.keys()].sort();
    const seen = new Set();
    const sections = ids.map((id) => renderGateway(id, gateways.get(id), seen));
    for (const key of cards.keys()) if (!seen.has(key)) cards.delete(key);
    $("no-gateways").hidden = ids.length > 0;
    root.replaceChildren($("no-gateways"), ...sections);
    renderSummary();
    for (const [id, gw] of gateways) {
      if (loggedIn && !gw.asked && isUp(gw)) {
        gw.asked = true;
        request(id, "status", {}, `status of ${id}`, { silent: true });
      }
    }
  }

  function renderSummary() {
    let online = 0; let modems = 0; let ready = 0; let sims = 0; let blocked = 0; let active = 0;
    for (const gw of gateways.values()) {
      if (isUp(gw)) online += 1;
      for (const m of gw.modems.values()) { modems += 1; if (m.state === "ready") ready += 1; }
      for (const s of gw.sims.values()) {
        sims += 1;
        if (s.state === "active") active += 1;
        if (s.state === "blocked" || s.state === "suspected") blocked += 1;
      }
    }
    const stat = (value, label, tone) => h("span", { class: `stat ${tone || ""}` }, h("strong", {}, String(value)), ` ${label}`);
    $("summary").replaceChildren(
      stat(`${online}/${gateways.size}`, "gateways online"),
      stat(`${ready}/${modems}`, "modems ready"),
      stat(`${active}/${sims}`, "SIMs active"),
      stat(blocked, "blocked or suspected", blocked ? "bad" : ""));
  }

  function renderGateway(id, gw, seen) {
    const info = gw.info || {};
    const traffic = gw.traffic;
    const trafficText = !traffic ? null
      : traffic.circuit_open ? "circuit open: traffic paused" : traffic.paused ? `traffic paused${traffic.pause_reason ? ` (${traffic.pause_reason})` : ""}` : "traffic flowing";
    const head = h("div", { class: "gw-head" },
      h("h2", {}, id),
      badge(gw.state || "unknown"),
      gw.state === "degraded"
        ? h("span", { class: "traffic t-paused", title: "its ledger cannot book: every call and SMS is refused storage_unavailable" },
          `storage: ${words(gw.reason || "unavailable")}, nothing can be booked`)
        : null,
      trafficText ? h("span", { class: `traffic ${traffic.paused || traffic.circuit_open ? "t-paused" : "t-ok"}` }, trafficText) : null,
      info.version ? h("span", { class: "muted small" }, `simbank ${info.version}`) : null,
      info.started_at ? h("span", { class: "muted small" }, `since ${dateTime(info.started_at)}`) : null,
      h("span", { class: "spacer" }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "warn", onclick: () => pauseTraffic(id) }, "Pause traffic"),
        h("button", { type: "button", onclick: () => resumeTraffic(id) }, "Resume")));
    const modemIds = [...gw.modems.keys()].sort();
    const simIds = [...gw.sims.keys()].sort((a, b) => simOrder(gw.sims.get(a)) - simOrder(gw.sims.get(b)) || a.localeCompare(b));
    const modemCards = modemIds.map((m) => {
      const key = `${id}/modem/${m}`;
      seen.add(key);
      return cached(key, gw.modems.get(m), () => modemCard(id, gw.modems.get(m)));
    });
    const simCards = simIds.map((s) => {
      const key = `${id}/sim/${s}`;
      seen.add(key);
      return cached(key, gw.sims.get(s), () => simCard(id, gw.sims.get(s)));
    });
    const look = gw.state === "online" ? "" : gw.state === "degraded" ? "gw-degraded" : "gw-down";
    return h("section", { class: `gateway ${look}`, dataset: { gateway: id } },
      head,
      h("h3", {}, `Modems `, h("span", { class: "count" }, String(modemIds.length))),
      h("div", { class: "grid modems" }, modemCards.length ? modemCards : h("p", { class: "muted" }, "No modems reported.")),
      h("h3", {}, `SIMs `, h("span", { class: "count" }, String(simIds.length))),
      h("div", { class: "grid sims" }, simCards.length ? simCards : h("p", { class: "muted" }, "No SIMs reported.")));
  }

  const SIM_ORDER = { blocked: 0, suspected: 1, locked: 2, active: 3, resting: 4, available: 5, disabled: 6, absent: 7 };
  const simOrder = (s) => SIM_ORDER[s.state] ?? 9;

  function modemCard(gw, m) {
    const reg = m.registration || {};
    const sig = m.signal || {};
    const quality = typeof sig.quality === "number" ? Math.max(0, Math.min(100, sig.quality)) : null;
    const bars = quality === null ? 0 : Math.ceil(quality / 25);
    const signal = h("span", { class: "signal", title: quality === null ? "no signal reading" : `${quality}% quality` },
      h("span", { class: "bars", dataset: { bars: String(bars) } }, h("i"), h("i"), h("i"), h("i")),
      sig.rssi_dbm !== null && sig.rssi_dbm !== undefined ? ` ${sig.rssi_dbm}\u00a0dBm` : " —",
      quality !== null ? h("span", { class: "muted" }, ` · ${quality}%`) : null);
    const canRotate = !!(m.capabilities && m.capabilities.slot_switch);
    return h("article", { class: `card modem m-${m.state}`, dataset: { modem: m.id, state: m.state } },
      h("div", { class: "card-head" },
        h("strong", { class: "name" }, m.id),
        badge(m.state)),
      h("dl", { class: "facts" },
        h("dt", {}, "Model"), h("dd", {}, [m.manufacturer, m.model].filter(Boolean).join(" ") || "—"),
        h("dt", {}, "Network"), h("dd", { class: "network" }, reg.operator || "—",
          reg.state ? h("span", { class: "muted" }, ` · ${words(reg.state)}`) : null,
          reg.reject_cause !== null && reg.reject_cause !== undefined ? h("span", { class: "bad-text" }, ` · reject cause ${reg.reject_cause}`) : null),
        h("dt", {}, "Signal"), h("dd", {}, signal),
        h("dt", {}, "SIM"), h("dd", { class: "mono wrap" }, m.active_slot ? `slot ${m.active_slot} · ` : "", m.iccid || "none"),
        m.reason ? h("dt", {}, "Reason") : null, m.reason ? h("dd", { class: "bad-text wrap" }, m.reason) : null),
      canRotate ? h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => rotateModem(gw, m.id) }, "Rotate SIM")) : null);
  }

  const QUOTAS = [
    ["calls_hour", "calls_per_hour", "Calls this hour", String],
    ["calls_day", "calls_per_day", "Calls today", String],
    ["call_seconds_day", "call_seconds_per_day", "Call time today", duration],
    ["sms_day", "sms_per_day", "SMS today", String],
    ["calls_month", "calls_per_month", "Calls this month", String],
    ["call_seconds_month", "call_seconds_per_month", "Call time this month", duration],
    ["sms_month", "sms_per_month", "SMS this month", String],
  ];

  function quotaRows(s) {
    const usage = s.usage || {};
    const limits = s.limits || {};
    const rows = [];
    for (const [used, limit, label, fmt] of QUOTAS) {
      const value = usage[used];
      if (value === null || value === undefined) continue; // the month is counted only with a monthly limit
      const max = limits[limit];
      const hasMax = typeof max === "number" && max > 0;
      if (!hasMax) continue; // a count without a limit is no quota
      const ratio = Math.min(1, value / max);
      const tone = ratio >= 1 ? "full" : ratio >= 0.8 ? "high" : "ok";
      const fill = h("span", { class: "fill" });
      fill.style.width = `${Math.round(ratio * 100)}%`;
      rows.push(h("div", { class: `quota q-${tone}`, dataset: { quota: used } },
        h("span", { class: "q-label" }, label),
        h("span", { class: "q-value" }, `${fmt(value)} / ${fmt(max)}`),
        h("span", { class: "bar", role: "img", "aria-label": `${Math.round(ratio * 100)}% used` }, fill)));
    }
    if (!rows.length) rows.push(h("div", { class: "muted small" }, "No quota limits."));
    if (usage.month_end && rows.some((r) => /month/.test(r.dataset.quota || ""))) {
      rows.push(h("div", { class: "muted small" }, `Billing month ends ${dateTime(usage.month_end)}`));
    }
    return rows;
  }

  // Evidence comes as {at, kind, detail: {...}} (events) or with the detail's fields inline
  // (the retained SIM state). The telling values first, the modem's raw line on its own.
  const EVIDENCE_ORDER = ["stat", "reject_cause", "cause", "cme_error", "cms_error", "sim_status", "domain", "rssi_dbm"];
  const EVIDENCE_HIDDEN = new Set(["at", "kind", "raw", "cause_type", "operator"]);
  const MAX_EVIDENCE = 6;

  function evidenceDetail(entry) {
    const detail = entry.detail !== undefined && entry.detail !== null && typeof entry.detail === "object" ? entry.detail : entry;
    const keys = Object.keys(detail).filter((k) => !EVIDENCE_HIDDEN.has(k));
    keys.sort((a, b) => (EVIDENCE_ORDER.indexOf(a) + 1 || 99) - (EVIDENCE_ORDER.indexOf(b) + 1 || 99));
    const facts = keys.map((k) => (k === "rssi_dbm" ? `${plain(detail[k])}\u00a0dBm` : `${words(k)} ${plain(detail[k])}`));
    const raw = detail.raw !== undefined ? plain(detail.raw) : null;
    return { facts: facts.join(" · "), raw };
  }

  function timeline(block) {
    const evidence = [...(block.evidence || [])].sort((a, b) => toDate(a.at) - toDate(b.at));
    const shown = evidence.slice(-MAX_EVIDENCE);
    const reason = words(block.reason);
    return h("div", { class: "block" },
      h("div", { class: "block-head" },
        h("strong", {}, reason.charAt(0).toUpperCase() + reason.slice(1)),
        h("span", { class: "muted small" }, ` since ${dateTime(block.since)}`)),
      evidence.length > shown.length ? h("div", { class: "muted small earlier" }, `${evidence.length - shown.length} earlier observation(s) not shown`) : null,
      shown.length
        ? h("ol", { class: "timeline" }, shown.map((e) => {
          const { facts, raw } = evidenceDetail(e);
          return h("li", { dataset: { kind: String(e.kind ?? "") } },
            h("time", { datetime: String(e.at ?? "") }, time(e.at)),
            h("span", { class: "ev-kind" }, words(e.kind)),
            facts ? h("span", { class: "ev-detail" }, facts) : null,
            raw ? h("code", { class: "ev-raw" }, raw) : null);
        }))
        : h("p", { class: "muted small" }, "No evidence recorded."));
  }

  function simCard(gw, s) {
    const where = [s.modem ? `modem ${s.modem}` : "not in a modem", s.slot ? `slot ${s.slot}` : null, s.policy ? `policy ${s.policy}` : null]
      .filter(Boolean).join(" · ");
    const quarantined = ["blocked", "suspected", "locked"].includes(s.state);
    const actions = [];
    if (quarantined) actions.push(h("button", { type: "button", class: "primary", dataset: { action: "release" }, onclick: () => releaseSim(gw, s.iccid) }, "Release"));
    if (s.state === "disabled") actions.push(h("button", { type: "button", dataset: { action: "enable" }, onclick: () => enableSim(gw, s.iccid) }, "Enable"));
    else if (s.state !== "blocked") actions.push(h("button", { type: "button", dataset: { action: "disable" }, onclick: () => disableSim(gw, s.iccid) }, "Disable"));
    const balance = s.balance ? h("div", { class: `small ${s.balance.low ? "bad-text" : "muted"}` },
      `Balance ${s.balance.amount ?? "unknown"}${s.balance.floor ? ` (floor ${s.balance.floor})` : ""}`) : null;
    return h("article", { class: `card sim st-${s.state}`, dataset: { iccid: s.iccid, state: s.state } },
      h("div", { class: "card-head" },
        h("strong", { class: "mono wrap name" }, s.iccid),
        badge(s.state)),
      h("div", { class: "muted small" }, where),
      s.reason ? h("div", { class: "small reason" }, `Resting: ${words(s.reason)}`) : null,
      h("div", { class: "quotas" }, quotaRows(s)),
      balance,
      s.sms_unread ? h("div", { class: "small" }, `${s.sms_unread} unread SMS`) : null,
      (s.warnings || []).length ? h("div", { class: "small warn-text" }, `Warnings: ${s.warnings.map(words).join(", ")}`) : null,
      s.block ? timeline(s.block) : null,
      actions.length ? h("div", { class: "actions" }, actions) : null);
  }

  // -- login -----------------------------------------------------------------------------------
  function loginFailed(text) {
    loggedIn = false;
    credentials = null;
    if (ws) { const old = ws; ws = null; old.close(); }
    setConn("out", "not logged in");
    $("logout").hidden = true;
    $("dash-view").hidden = true;
    $("login-view").hidden = false;
    $("login-button").disabled = false;
    $("login-error").textContent = text;
    $("login-error").hidden = false;
  }

  function logout() {
    leaving = true;
    credentials = null;
    loggedIn = false;
    if (ws) ws.close();
    ws = null;
    gateways.clear();
    cards.clear();
    pending.clear();
    $("events").replaceChildren();
    $("notices").replaceChildren();
    $("no-events").hidden = false;
    render();
    setConn("out", "not logged in");
    $("logout").hidden = true;
    $("dash-view").hidden = true;
    $("login-view").hidden = false;
    $("login-button").disabled = false;
    $("password").value = "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const username = $("username").value.trim();
      if (!username) {
        $("login-error").textContent = "Enter a user name.";
        $("login-error").hidden = false;
        return;
      }
      credentials = { username, password: $("password").value };
      leaving = false;
      $("login-error").hidden = true;
      $("login-button").disabled = true;
      setConn("connecting", "logging in…");
      if (ws) { const old = ws; ws = null; old.close(); }
      connect();
    });
    $("logout").addEventListener("click", logout);
    $("confirm-cancel").addEventListener("click", closeDialog);
    $("confirm-ok").addEventListener("click", confirmDialog);
    $("confirm-note").addEventListener("keydown", (ev) => { if (ev.key === "Enter") confirmDialog(); });
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && !$("confirm").hidden) closeDialog(); });
  });
})();
