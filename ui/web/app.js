// shoal's window: everything it shows comes from POST /api, which speaks the control protocol
// (docs/PROTOCOL.md 5.3) with the token from the URL's fragment. Text from the network is only
// ever put in the page as text (textContent), never as markup.
"use strict";

const token = decodeURIComponent(location.hash.slice(1));
let nextId = 1;
let status = null;
let networks = [];
let selected = null;          // {kind: "peer", network, node_id} of the details panel
let conv = null;              // {kind: "network", name} or {kind: "peer", node_id, nick}
const chats = new Map();      // conversation key -> [message]
const unread = new Map();

function $(id) { return document.getElementById(id); }

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

async function api(cmd, fields) {
  const r = await fetch("/api", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Shoal-Token": token },
    body: JSON.stringify(Object.assign({ id: nextId++, cmd }, fields || {})),
  });
  if (r.status === 403) throw new Error("this window's token is wrong: open it with `shoal ui`");
  if (!r.ok) throw new Error(`shoald answered ${r.status}`);
  const j = await r.json();
  if (!j.ok) throw new Error(j.error || "refused");
  return j;
}

function showError(e) {
  const p = $("error");
  p.textContent = e ? String(e.message || e) : "";
  p.hidden = !e;
}

async function act(cmd, fields) {
  try {
    const r = await api(cmd, fields);
    showError(null);
    await refresh();
    return r;
  } catch (e) {
    showError(e);
    return null;
  }
}

// ---- the state of the LAN ----

function peerState(m) {
  if (m.pending) return ["pending", "awaiting approval"];
  if (!m.online) return ["offline", "offline"];
  if (m.path === "direct") return ["direct", "direct"];
  if (m.path === "relay") return ["relay", "relayed" + (m.relay ? ` via ${m.relay}` : "")];
  return ["connecting", "connecting"];
}

function renderMe() {
  if (!status) return;
  $("my-nick").textContent = status.nick || "(no nick)";
  $("my-address").textContent = status.address || "no address yet";
  const up = status.server === "connected";
  $("server-dot").className = "dot " + (up ? "connected" : "offline");
  $("server-text").textContent = up ? "mediator connected" : "mediator unreachable";
}

// The list is rebuilt only when something but latencies changed (a rebuild under the user's
// pointer or keyboard focus would lose it); latencies are updated in place.
let listSignature = "";

function rttText(m) { return typeof m.rtt_ms === "number" ? `${m.rtt_ms.toFixed(1)} ms` : ""; }

function renderNetworks() {
  const nav = $("networks");
  const sig = JSON.stringify([networks.map(n => Object.assign({}, n, {
    members: n.members.map(m => Object.assign({}, m, { rtt_ms: undefined })) })), selected]);
  if (sig === listSignature) {
    for (const n of networks) for (const m of n.members) {
      const span = nav.querySelector(`section[data-network="${CSS.escape(n.name)}"] button.peer[data-node="${m.node_id}"] .lat`);
      if (span && span.textContent !== rttText(m)) span.textContent = rttText(m);
    }
    return;
  }
  listSignature = sig;
  nav.replaceChildren();
  if (!networks.length) nav.append(el("p", { class: "muted", text: "No network yet: create or join one." }));
  for (const n of networks) {
    const peers = n.members.filter(m => !m.self);
    const online = peers.filter(m => m.online).length;
    const h = el("h2", {},
      el("span", { text: n.name }),
      el("span", { class: "muted", text: `${online}/${peers.length} online` }),
      n.locked ? el("span", { class: "muted", text: "locked" }) : null,
      n.pending ? el("span", { class: "muted", text: "waiting for approval" }) : null);
    const actions = el("div", { class: "actions" },
      el("button", { text: "Chat", onclick: () => openChat({ kind: "network", name: n.name }) }),
      el("button", { text: n.online ? "Go offline" : "Go online", "data-act": "online",
        onclick: () => act(n.online ? "go-offline" : "go-online", { network: n.name }) }),
      el("button", { text: "Leave", onclick: () => confirmAct(`Leave ${n.name}?`, "leave", { network: n.name }) }));
    if (n.owner) {
      actions.append(
        el("button", { text: n.locked ? "Unlock" : "Lock", "data-act": "lock",
          onclick: () => act("set-access", { network: n.name, access: n.locked ? "unlock" : "lock" }) }),
        el("button", { text: n.approval === "manual" ? "Auto approval" : "Manual approval", "data-act": "approval",
          onclick: () => act("set-access", { network: n.name, access: n.approval === "manual" ? "auto" : "manual" }) }),
        el("button", { text: "Password…", onclick: () => askPassword(n.name) }),
        el("button", { text: "Delete", onclick: () => confirmAct(`Delete ${n.name} for everyone?`, "delete", { network: n.name }) }));
    }
    const ul = el("ul");
    for (const m of peers) {
      const [cls, what] = peerState(m);
      const rtt = rttText(m);
      const isSel = selected && selected.node_id === m.node_id && selected.network === n.name;
      const b = el("button", { class: "peer" + (isSel ? " selected" : ""), "data-nick": m.nick,
        "data-node": m.node_id,
        "data-state": cls, title: what, onclick: () => { selected = { network: n.name, node_id: m.node_id }; render(); } },
        el("span", { class: "dot " + cls }),
        el("span", { text: m.nick || m.node_id.slice(0, 8) }),
        el("span", { class: "addr", text: m.address || "" }),
        el("span", { class: "lat", text: rtt }));
      const li = el("li", {}, b);
      if (n.owner && m.pending)
        li.append(el("div", { class: "actions" },
          el("button", { text: "Approve", onclick: () => act("approve", { network: n.name, peer: m.node_id }) }),
          el("button", { text: "Reject", onclick: () => act("reject", { network: n.name, peer: m.node_id }) })));
      ul.append(li);
    }
    nav.append(el("section", { class: "network", "data-network": n.name }, h, actions, ul));
  }
}

function renderDetails() {
  const d = $("details");
  const n = selected && networks.find(x => x.name === selected.network);
  const m = n && n.members.find(x => x.node_id === selected.node_id);
  $("side").classList.toggle("with-details", !!m);
  if (!m) { d.hidden = true; return; }
  const [, what] = peerState(m);
  const dl = el("dl");
  const row = (k, v) => { if (v !== null && v !== undefined && v !== "") dl.append(el("dt", { text: k }), el("dd", { text: String(v) })); };
  row("nick", m.nick);
  row("address", m.address);
  row("node id", m.node_id);
  row("state", what);
  row("latency", typeof m.rtt_ms === "number" ? `${m.rtt_ms.toFixed(1)} ms` : null);
  row("transport", m.transport);
  row("strategy tried", m.strategy);
  row("relay", m.relay);
  row("why not direct", m.path === "direct" ? null : m.relay_reason || (m.reason && m.reason.why));
  if (m.nat) {
    row("my NAT", m.nat.mine);
    row("peer's NAT", `${m.nat.peer}, ${m.nat.peer_filtering} filtering`);
  } else if (status && status.nat) {
    row("my NAT", `${status.nat.mapping}, ${status.nat.filtering} filtering, ${status.nat.ports} ports`);
  }
  d.replaceChildren(el("h2", { text: m.nick || m.node_id.slice(0, 8) }), dl,
    el("div", { class: "actions" },
      el("button", { text: "Chat", onclick: () => openChat({ kind: "peer", node_id: m.node_id, nick: m.nick }) }),
      n.owner ? el("button", { text: "Evict", onclick: () => confirmAct(`Evict ${m.nick} from ${n.name}?`, "evict", { network: n.name, peer: m.node_id }) }) : null));
  d.hidden = false;
}

// ---- the picture: me in the middle, every peer around, lines coloured by path ----

const SVG = "http://www.w3.org/2000/svg";
const colours = { direct: "#16a34a", relay: "#d97706", connecting: "#60a5fa", offline: "#9ca3af", pending: "#9333ea" };

function svg(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function renderPicture() {
  const pic = $("picture");
  const peers = new Map();
  for (const n of networks) for (const m of n.members) if (!m.self && !peers.has(m.node_id)) peers.set(m.node_id, m);
  const list = [...peers.values()];
  const cx = 300, cy = 130, r = 100;
  const parts = [];
  const relays = new Map();
  list.forEach((m, i) => {
    const a = (2 * Math.PI * i) / Math.max(list.length, 1) - Math.PI / 2;
    const x = cx + 2.3 * r * Math.cos(a), y = cy + r * Math.sin(a);
    const [cls] = peerState(m);
    let from = [cx, cy];
    if (cls === "relay" && m.relay) {
      // through the relay: me -> relay -> peer, the relay drawn once between
      if (!relays.has(m.relay)) relays.set(m.relay, [cx + (x - cx) / 2, cy + (y - cy) / 2]);
      const [rx, ry] = relays.get(m.relay);
      parts.push(svg("line", { x1: cx, y1: cy, x2: rx, y2: ry, stroke: colours.relay, class: "relay" }));
      from = [rx, ry];
    }
    parts.push(svg("line", { x1: from[0], y1: from[1], x2: x, y2: y, stroke: colours[cls], class: cls }));
    if (typeof m.rtt_ms === "number")
      parts.push(svg("text", { x: (from[0] + x) / 2 + 4, y: (from[1] + y) / 2 - 4, class: "lat" }, `${m.rtt_ms.toFixed(1)} ms`));
    parts.push(svg("circle", { cx: x, cy: y, r: 9, fill: colours[cls] }));
    parts.push(svg("text", { x: x + 13, y: y + 6 }, m.nick || m.node_id.slice(0, 8)));
  });
  for (const [name, [rx, ry]] of relays) {
    parts.push(svg("rect", { x: rx - 8, y: ry - 8, width: 16, height: 16, fill: colours.relay }));
    parts.push(svg("text", { x: rx + 11, y: ry + 6 }, name));
  }
  parts.push(svg("circle", { cx, cy, r: 12, fill: "#2563eb" }));
  parts.push(svg("text", { x: cx + 16, y: cy + 6 }, status && status.nick ? `${status.nick} (you)` : "you"));
  pic.replaceChildren(...parts);
  pic.setAttribute("aria-label", list.map(m => `${m.nick}: ${peerState(m)[1]}`).join(", ") || "no peers");
}

// ---- chat ----

function convKey(c) { return c.kind === "network" ? "n:" + c.name : "p:" + c.node_id; }

function msgKey(m) { return m.kind === "network" ? "n:" + m.network : "p:" + m.peer; }

function convOf(k) { return k.startsWith("n:") ? { kind: "network", name: k.slice(2) } : { kind: "peer", node_id: k.slice(2) }; }

// The tabs as a tablist: Left/Right (Home/End) move between conversations and open them, the
// focus staying on the tabs; Tab goes on to the messages' input.
$("tabs").addEventListener("keydown", ev => {
  const bs = [...$("tabs").querySelectorAll("button[role=tab]")];
  const i = bs.indexOf(document.activeElement);
  const step = { ArrowRight: 1, ArrowLeft: -1, Home: -i, End: bs.length - 1 - i }[ev.key];
  if (i < 0 || step === undefined) return;
  ev.preventDefault();
  openChat(convOf(bs[(i + step + bs.length) % bs.length].dataset.conv), true);
});

function renderChat() {
  const tabs = $("tabs");
  // the tabs are rebuilt on every message: a keyboard user on one stays on it
  const onTab = tabs.contains(document.activeElement) ? document.activeElement.dataset.conv : null;
  tabs.replaceChildren();
  const keys = new Set([...chats.keys()]);
  if (conv) keys.add(convKey(conv));
  for (const k of keys) {
    const label = k.startsWith("n:") ? k.slice(2) : (nickOf(k.slice(2)) || k.slice(2, 10));
    const c = convOf(k);
    const b = el("button", { role: "tab", "aria-selected": conv && convKey(conv) === k ? "true" : "false",
      "data-conv": k, onclick: () => openChat(c) }, el("span", { text: label }));
    if (unread.get(k)) b.append(el("span", { class: "unread", text: String(unread.get(k)) }));
    tabs.append(b);
    if (k === onTab) b.focus();
  }
  const ol = $("messages");
  ol.replaceChildren();
  if (!conv) return;
  for (const m of chats.get(convKey(conv)) || []) {
    const t = new Date(m.ts_ms);
    ol.append(el("li", {},
      el("span", { class: "when", text: t.toLocaleTimeString() }),
      el("span", { class: "from", text: m.from + ":" }),
      el("span", { class: "text", text: m.sealed ? "(a private message this node cannot open)" : m.text })));
  }
  ol.scrollTop = ol.scrollHeight;
}

function nickOf(nodeId) {
  for (const n of networks) for (const m of n.members) if (m.node_id === nodeId) return m.nick;
  return null;
}

async function openChat(c, stayOnTab) {
  conv = c;
  const k = convKey(c);
  unread.delete(k);
  $("text").disabled = false;
  $("send-button").disabled = false;
  $("text").placeholder = c.kind === "network" ? `Message everyone in ${c.name}` : `Message ${c.nick || nickOf(c.node_id) || "peer"} (end-to-end encrypted)`;
  if (!chats.has(k)) {
    chats.set(k, []);
    try {
      const h = await api("chat-history", c.kind === "network" ? { network: c.name } : { peer: c.node_id });
      chats.set(k, h.messages.concat(chats.get(k)));
    } catch (e) { showError(e); }
  }
  renderChat();
  if (stayOnTab) $("tabs").querySelector(`button[data-conv="${CSS.escape(k)}"]`).focus();
  else $("text").focus();
}

// New messages: the stream's events (and, while it is down, the poll) carry the newest chat id;
// chat-follow then answers at once with what came after the last one we have.
let chatAfter = 0, chatWanted = 0, chatBusy = false;

async function chatTo(last) {
  // ids only grow within one run of shoald: a smaller one means it restarted (its ring holds
  // only what arrived since)
  if (last < chatAfter) chatAfter = chatWanted = 0;
  chatWanted = Math.max(chatWanted, last);
  if (chatBusy) return;
  chatBusy = true;
  try {
    while (chatAfter < chatWanted) {
      const r = await api("chat-follow", { after: chatAfter });
      for (const m of r.messages) {
        const k = msgKey(m);
        const list = chats.get(k) || [];
        list.push(m);
        chats.set(k, list);
        if (!conv || convKey(conv) !== k) unread.set(k, (unread.get(k) || 0) + 1);
      }
      if (r.last <= chatAfter) break;
      chatAfter = r.last;
      renderChat();
    }
  } catch (e) {
    showError(e);
  } finally {
    chatBusy = false;
  }
}

$("send").addEventListener("submit", async ev => {
  ev.preventDefault();
  const t = $("text");
  if (!conv || !t.value) return;
  const text = t.value;
  t.value = "";
  try {
    await api("chat", Object.assign({ text }, conv.kind === "network" ? { network: conv.name } : { peer: conv.node_id }));
    showError(null);
  } catch (e) { showError(e); t.value = text; }
});

// ---- dialogs ----

function ask(title, inputs, submit) {
  const dlg = $("dialog");
  const form = $("dialog-form");
  form.replaceChildren(el("h2", { text: title }));
  const fields = {};
  for (const i of inputs) {
    const input = el("input", { name: i.name, type: i.type || "text", "aria-label": i.label, placeholder: i.label, required: !i.optional });
    fields[i.name] = input;
    form.append(input);
  }
  const buttons = el("div", { class: "actions" });
  for (const [label, fn] of submit)
    buttons.append(el("button", { text: label, value: label, onclick: async ev => {
      ev.preventDefault();
      const v = {};
      for (const [k, input] of Object.entries(fields)) v[k] = input.value;
      dlg.close();
      await fn(v);
    } }));
  buttons.append(el("button", { text: "Cancel", value: "cancel", formnovalidate: true }));
  form.append(buttons);
  dlg.showModal();
  const first = Object.values(fields)[0];
  if (first) first.focus();
}

function confirmAct(question, cmd, fields) {
  ask(question, [], [["Yes", () => act(cmd, fields)]]);
}

function askPassword(network) {
  ask(`New password for ${network}`, [{ name: "password", label: "password (empty: none)", type: "password", optional: true }],
    [["Set", v => act("set-pass", { network, password: v.password })]]);
}

$("new-network").addEventListener("click", () =>
  ask("Create or join a network", [{ name: "network", label: "network name" },
    { name: "password", label: "password", type: "password", optional: true }],
  [["Join", v => act("join", pw(v))], ["Create", v => act("create", pw(v))]]));

function pw(v) { return v.password ? { network: v.network, password: v.password } : { network: v.network }; }

$("set-nick").addEventListener("click", () =>
  ask("Your nick", [{ name: "nick", label: "nick" }], [["Set", v => act("set-nick", { nick: v.nick })]]));

$("my-address").addEventListener("click", () => {
  if (status && status.address && navigator.clipboard) navigator.clipboard.writeText(status.address).catch(() => {});
});

// ---- live ----

// Each render rebuilds the lists: the focused control is found again by what it does (its
// network, its data-act or peer, else its label), so a keyboard user never loses their place.
function focusKey(e) {
  if (!e || e === document.body) return null;
  if (e.id) return "#" + e.id;
  const box = e.closest("[data-network], #details");
  if (!box) return null;
  return [box.id || box.dataset.network, e.dataset.act || e.dataset.node || e.textContent];
}

function refocus(key) {
  if (!key || typeof key === "string") return;
  const [box, what] = key;
  const root = box === "details" ? $("details") : [...document.querySelectorAll("section[data-network]")].find(x => x.dataset.network === box);
  if (!root) return;
  const e = [...root.querySelectorAll("button")].find(b => (b.dataset.act || b.dataset.node || b.textContent) === what);
  if (e) e.focus();
}

function render() {
  const key = focusKey(document.activeElement);
  renderMe();
  renderNetworks();
  renderDetails();
  renderPicture();
  if (document.activeElement === document.body || !document.activeElement) refocus(key);
}

async function refresh() {
  try {
    status = await api("status");
    networks = (await api("list")).networks;
    render();
  } catch (e) {
    showError(e);
  }
}

// Refreshes run one at a time; asks during one make one more after it, at most ten a second.
let refreshing = false, refreshAgain = false;
const sleep = ms => new Promise(res => setTimeout(res, ms));

async function kick() {
  if (refreshing) { refreshAgain = true; return; }
  refreshing = true;
  do {
    refreshAgain = false;
    const t0 = performance.now();
    await refresh();
    const dt = performance.now() - t0;
    if (refreshAgain && dt < 100) await sleep(100 - dt);
  } while (refreshAgain);
  refreshing = false;
}

// Live: the daemon's event stream (GET /events) says when anything shown changed. EventSource
// cannot send the token: a one-time ticket from POST /ticket opens it. While the stream is down
// the page polls slowly and tries the stream again; the html element's data-live says which.
const POLL_MS = 5000, RETRY_MS = 2000;
let pollTimer = null;

function setLive(mode) {
  document.documentElement.dataset.live = mode;
  $("live").textContent = mode === "stream" ? "live" : "reconnecting…";
  if (mode === "stream") { clearInterval(pollTimer); pollTimer = null; }
  else if (!pollTimer) pollTimer = setInterval(poll, POLL_MS);
}

// While the stream is down: status and list, and the newest chat id (a watch after 0 answers
// at once).
async function poll() {
  kick();
  try { chatTo((await api("watch")).chat); } catch (e) { showError(e); }
}

async function stream() {
  let ticket = null;
  try {
    const r = await fetch("/ticket", { method: "POST", headers: { "X-Shoal-Token": token } });
    if (r.status === 403) throw new Error("this window's token is wrong: open it with `shoal ui`");
    if (!r.ok) throw new Error(`shoald answered ${r.status}`);
    ticket = (await r.json()).ticket;
  } catch (e) {
    showError(e);
    setLive("poll");
    setTimeout(stream, RETRY_MS);
    return;
  }
  const es = new EventSource("/events?ticket=" + encodeURIComponent(ticket));
  es.addEventListener("change", ev => { kick(); chatTo(JSON.parse(ev.data).chat); });
  es.onopen = () => { setLive("stream"); showError(null); };   // its first event comes at once
  es.onerror = () => {
    // the daemon went away or restarted: the ticket is spent, so a new one, a little later
    es.close();
    setLive("poll");
    setTimeout(stream, RETRY_MS);
  };
}

if (!token) showError("no token: open this window with `shoal ui`");
else { kick(); stream(); }
