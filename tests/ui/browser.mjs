// The window in a real browser (Debian's chromium driven by playwright-core): two daemons'
// pages, as two users would use them. Run by tests/integ/test_ui_browser.py, which starts the
// mediator and the daemons and passes: ALICE_URL, BOB_URL (with #token), BAD_URL (a wrong
// token), SHOTS (a directory for screenshots), CHROMIUM (the binary).
// Prints one line per step; exits 1 at the first failure. "ask: WHAT" lines ask the driver to
// do something (stop alice, start alice); it answers "done" on stdin.
import { chromium } from "playwright-core";
import readline from "node:readline";

const env = process.env;
const step = (s) => console.log("step: " + s);
const errors = [];
// Things only the test's driver can do (restart a daemon): asked on stdout, answered on stdin.
const driver = readline.createInterface({ input: process.stdin });
const answers = driver[Symbol.asyncIterator]();
async function ask(what) {
  console.log("ask: " + what);
  const { value } = await answers.next();
  if (value !== "done") throw new Error(`${what}: ${value}`);
}
let a_page = null;          // alice's page, for a screenshot when a step fails

function watch(page, who) {
  page.on("console", (m) => { if (m.type() === "error") errors.push(`${who}: console: ${m.text()}`); });
  page.on("pageerror", (e) => errors.push(`${who}: ${e.message}`));
}

// Tab (forwards) until the focused element satisfies pred (run in the page), at most 80 presses:
// reaching a control this way is what a keyboard user does.
async function tabTo(page, pred, what) {
  for (let i = 0; i < 80; i++) {
    await page.keyboard.press("Tab");
    if (await page.evaluate(pred)) return;
  }
  throw new Error(`Tab never reached ${what}`);
}
// The join form, keyboard only: name, Tab, password, Tab to Join, Enter; waits for the group.
async function joinByKeyboard(page, net, password) {
  await page.focus("#new-network");
  await page.keyboard.press("Enter");
  await page.keyboard.type(net);
  await page.keyboard.press("Tab");
  await page.keyboard.type(password);
  await page.keyboard.press("Tab");        // Join
  await page.keyboard.press("Enter");
  await page.waitForSelector(`section[data-network="${net}"]`);
}
const actBtn = (net, act) => `(() => { const e = document.activeElement; return e && e.dataset.act === "${act}" && e.closest('section[data-network="${net}"]') !== null; })()`;
const labelled = (scope, label) => `(() => { const e = document.activeElement; return e && e.tagName === "BUTTON" && e.textContent === ${JSON.stringify(label)} && e.closest(${JSON.stringify(scope)}) !== null; })()`;
const focusedText = (page) => page.evaluate(() => document.activeElement && document.activeElement.textContent);

// Every visible control's identity (its network or panel, and what it does), as refocus in
// app.js finds it again: the same control keeps its key across re-renders.
const CONTROL_KEYS = `(() => {
  const key = (e) => { const box = e.closest("[data-network], [id]");
    return (box ? (box.dataset.network || box.id) : "") + "/" + (e.dataset.act || e.dataset.node || e.dataset.conv || e.id || e.textContent); };
  window.__key = key;
  return [...document.querySelectorAll("button, input, [tabindex]")]
    .filter((e) => !e.disabled && e.offsetParent !== null && !e.closest("dialog")).map(key);
})()`;

// What does not fit a window of this width: the page scrolling sideways, a box scrolling
// sideways inside, anything reaching past the edges, text smaller than 11 px.
const NOT_FITTING = `(() => {
  const W = document.documentElement.clientWidth, bad = [];
  if (document.documentElement.scrollWidth > W) bad.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " > " + W);
  for (const e of document.querySelectorAll("body *")) {
    if (e.closest("dialog") || (e.closest("svg") && e.tagName !== "svg")) continue;
    const r = e.getBoundingClientRect(), cs = getComputedStyle(e);
    if (!r.width && !r.height) continue;
    const what = e.tagName + (e.id ? "#" + e.id : "") + " " + (e.textContent || "").slice(0, 30);
    if (r.left < -0.5 || r.right > W + 0.5) bad.push("past the edge: " + what + " " + r.left + ".." + r.right);
    if (e.scrollWidth > e.clientWidth + 1 && /auto|scroll|hidden/.test(cs.overflowX)) bad.push("scrolls sideways inside: " + what);
    if (e.childElementCount === 0 && e.textContent.trim() && parseFloat(cs.fontSize) < 11) bad.push("too small: " + what);
  }
  return bad;
})()`;

async function dialog(page, fields, button) {
  for (const [name, value] of Object.entries(fields))
    await page.fill(`#dialog input[name="${name}"]`, value);
  await page.click(`#dialog button:text-is("${button}")`);
}

const browser = await chromium.launch({ executablePath: env.CHROMIUM, args: ["--no-sandbox"] });
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const a = await ctx.newPage();
  a_page = a;
  const b = await ctx.newPage();
  watch(a, "alice");
  watch(b, "bob");
  await a.goto(env.ALICE_URL);
  await b.goto(env.BOB_URL);
  await a.waitForSelector("#my-address:not(:text-is('…'))");
  step("both pages show their node");

  // create in alice's page, join in bob's: with the keyboard alone in alice's
  await a.focus("#new-network");
  await a.keyboard.press("Enter");
  await a.keyboard.type("lan");
  await a.keyboard.press("Tab");        // password (empty)
  await a.keyboard.press("Tab");        // Join
  await a.keyboard.press("Tab");        // Create
  await a.keyboard.press("Enter");
  await a.waitForSelector('section[data-network="lan"]');
  step("created 'lan' with the keyboard alone");
  await b.click("#new-network");
  await dialog(b, { network: "lan" }, "Join");
  await b.waitForSelector('section[data-network="lan"]');
  await a.waitForSelector('button.peer[data-nick="bob"][data-state="direct"]', { timeout: 20000 });
  await b.waitForSelector('button.peer[data-nick="alice"][data-state="direct"]', { timeout: 20000 });
  step("each page shows the other as direct");

  // live: a change made on bob's daemon reaches alice's page through the event stream. A second
  // page of alice's, watched through the DevTools protocol from before it loads: every /api
  // request it makes and every event of its stream, with the time.
  const a2 = await ctx.newPage();
  watch(a2, "alice's second page");
  const cdp = await ctx.newCDPSession(a2);
  await cdp.send("Network.enable");
  const seen = [];          // [ms, "event" | the /api command]
  cdp.on("Network.eventSourceMessageReceived", () => seen.push([Date.now(), "event"]));
  cdp.on("Network.requestWillBeSent", (e) => {
    if (e.request.url.endsWith("/api")) seen.push([Date.now(), JSON.parse(e.request.postData || "{}").cmd]);
  });
  await a2.goto(env.ALICE_URL);
  await a2.waitForSelector('html[data-live="stream"]');
  await a2.waitForSelector('button.peer[data-nick="bob"]');
  // settled: the stream's first event came and the refresh it asked for has started
  const firstEvent = () => seen.findIndex(([, w]) => w === "event");
  for (let i = 0; firstEvent() < 0 || !seen.slice(firstEvent()).some(([, w]) => w === "list"); i++) {
    if (i > 100) throw new Error(`the stream brought no refresh: ${JSON.stringify(seen)}`);
    await a2.waitForTimeout(50);
  }
  const t0 = Date.now();
  await a2.waitForTimeout(3000);        // an observation window in which nothing is changed
  const between = (from, to) => seen.filter(([t]) => t >= from && t <= to);
  const idle = between(t0, Date.now());
  const idleLists = idle.filter(([, w]) => w === "list").length;
  // latencies may change (they are shown): each such event may bring one refresh, no more (an
  // event just before the window may have its refresh in it)
  const idleEvents = between(t0 - 500, Date.now()).filter(([, w]) => w === "event").length;
  if (idleLists > idleEvents) throw new Error(`the page polls while the stream is up: ${JSON.stringify(idle)}`);
  await b.click("#set-nick");
  await b.keyboard.type("bobby");
  const t1 = Date.now();
  await b.keyboard.press("Enter");
  await a2.waitForSelector('button.peer[data-nick="bobby"]', { timeout: 10000 });
  const t2 = Date.now();
  const after = between(t1, t2);
  const eventAt = after.findIndex(([, w]) => w === "event");
  if (eventAt < 0 || !after.slice(eventAt).some(([, w]) => w === "list"))
    throw new Error(`the new nick did not come by the stream: ${JSON.stringify(after)}`);
  step(`bob's new nick reached alice's page by the event stream in ${t2 - t1} ms (reference: the page polled every 1000 ms before; ` +
    `${idleLists} refreshes for ${idleEvents} events in a 3 s idle window)`);
  await b.click("#set-nick");
  await b.keyboard.type("bob");
  await b.keyboard.press("Enter");
  await a.waitForSelector('button.peer[data-nick="bob"]');
  await a2.close();

  await a.click('button.peer[data-nick="bob"]');
  await a.waitForSelector("#details:not([hidden]) >> text=direct");
  // both sides' NAT classes, from the mediator's punch plan for the pair
  await a.waitForSelector('#details dt:text-is("peer\'s NAT")', { timeout: 10000 });
  await a.waitForSelector('#details dt:text-is("my NAT")');
  await a.screenshot({ path: `${env.SHOTS}/window.png` });
  step("details of bob in alice's page; screenshot");

  // chat: alice writes to the network, bob's tab shows it unread, then the message
  await a.click('section[data-network="lan"] button:text-is("Chat")');
  await a.fill("#text", "hello from the page");
  await a.press("#text", "Enter");
  await b.waitForSelector("#tabs .unread");
  await b.click('#tabs button:has-text("lan")');
  await b.waitForSelector('#messages li:has-text("hello from the page")');
  step("a chat message from alice's page appears in bob's");
  await b.fill("#text", "and back");
  await b.press("#text", "Enter");
  await a.waitForSelector('#messages li:has-text("and back")');
  step("and bob's answer in alice's");
  await a.screenshot({ path: `${env.SHOTS}/window-chat.png` });     // docs/ui.png
  await b.screenshot({ path: `${env.SHOTS}/chat.png` });

  // every owner and member action of alice's page with the keyboard alone (Tab, Enter, Space,
  // arrows): each answer re-renders the list, and the focus stays on the control used
  const lanBtn = (act) => `section[data-network="lan"] button[data-act="${act}"]`;
  for (const [act, key, on, off] of [["lock", "Enter", "Unlock", "Lock"],
    ["approval", "Space", "Auto approval", "Manual approval"], ["online", "Enter", "Go online", "Go offline"]]) {
    await a.focus("#set-nick");
    await tabTo(a, actBtn("lan", act), act);
    await a.keyboard.press(key);
    await a.waitForSelector(`${lanBtn(act)}:text-is("${on}")`);
    await a.waitForFunction((t) => document.activeElement && document.activeElement.textContent === t, on);
    await a.keyboard.press(key);
    await a.waitForSelector(`${lanBtn(act)}:text-is("${off}")`);
  }
  step("lock/unlock, approval mode, offline/online with the keyboard; the focus stays put");
  await a.focus("#my-address");
  await tabTo(a, `document.activeElement.id === "set-nick"`, "Nick…");
  await a.keyboard.press("Enter");
  await a.waitForSelector("#dialog[open]");
  await a.keyboard.type("alice2");
  await a.keyboard.press("Enter");
  await a.waitForSelector("#my-nick:text-is('alice2')");
  step("nickname set with the keyboard");
  await tabTo(a, labelled('section[data-network="lan"]', "Password…"), "Password…");
  await a.keyboard.press("Enter");
  await a.waitForSelector("#dialog[open]");
  await a.keyboard.type("s3cret");
  await a.keyboard.press("Enter");
  await a.waitForSelector("#dialog:not([open])", { state: "attached" });
  step("password changed with the keyboard");
  // a private chat: the peer, its details, Chat, type, Enter; bob's page gets it
  await a.focus("#set-nick");
  await tabTo(a, `(() => { const e = document.activeElement; return e && e.dataset.nick === "bob"; })()`, "bob");
  await a.keyboard.press("Enter");
  await a.waitForSelector("#details:not([hidden])");
  await tabTo(a, labelled("#details", "Chat"), "Chat in the details");
  await a.keyboard.press("Enter");
  await a.waitForFunction(() => document.activeElement && document.activeElement.id === "text");
  await a.keyboard.type("typed, not clicked");
  await a.keyboard.press("Enter");
  await b.waitForSelector("#tabs .unread");
  step("a private chat opened and sent with the keyboard");
  // the chat tabs: Shift+Tab back to them, the arrows switch conversations
  const onTab = () => a.evaluate(() => document.activeElement.getAttribute("role") === "tab");
  for (let i = 0; i < 6 && !(await onTab()); i++)
    await a.keyboard.press("Shift+Tab");
  if (!(await onTab())) throw new Error(`Shift+Tab from the message input did not reach a chat tab (focus on ${await focusedText(a)})`);
  // a message arriving rebuilds the tabs: the keyboard user stays on theirs
  await b.fill("#text", "while alice is on the tabs");
  await b.press("#text", "Enter");
  await a.waitForSelector('#tabs button[data-conv="n:lan"] .unread');
  if (!(await onTab())) throw new Error(`a message arriving took the focus off the chat tabs (now on ${await focusedText(a)})`);
  await a.keyboard.press("ArrowLeft");
  await a.waitForFunction(() => document.activeElement.dataset.conv === "n:lan" &&
    document.activeElement.getAttribute("aria-selected") === "true");
  await a.waitForSelector('#messages li:has-text("and back")');
  await a.keyboard.press("ArrowRight");
  await a.waitForFunction(() => document.activeElement.dataset.conv.startsWith("p:") &&
    document.activeElement.getAttribute("aria-selected") === "true");
  await a.waitForSelector('#messages li:has-text("typed, not clicked")');
  step("chat tabs switched with the arrow keys");
  if ((await focusedText(a)) === null) throw new Error("focus lost");

  // 1280x800 with a peer selected: all its details, the NAT rows too, above the fold
  const hidden = await a.evaluate(() => {
    window.scrollTo(0, 0);
    const d = document.getElementById("details"), box = d.getBoundingClientRect();
    d.scrollTop = 0;
    const rows = [...d.querySelectorAll("h2, dt, dd, button")];
    if (!rows.some((e) => e.textContent === "peer's NAT")) return ["no peer's NAT row"];
    return rows.filter((e) => { const r = e.getBoundingClientRect();
      return r.top < box.top || r.bottom > Math.min(box.bottom, innerHeight) + 0.5; }).map((e) => e.textContent);
  });
  if (hidden.length) throw new Error(`at 1280x800 the details hide: ${hidden.join(", ")}`);
  await a.screenshot({ path: `${env.SHOTS}/fold.png` });
  step("at 1280x800 the selected peer's details, NAT rows included, are all above the fold");

  // a narrow window: nothing sideways, every control reached with Tab and shown when focused
  await a.setViewportSize({ width: 480, height: 800 });
  await a.waitForSelector('button.peer[data-nick="bob"]');
  const misfits = await a.evaluate(NOT_FITTING);
  if (misfits.length) throw new Error(`at 480x800: ${misfits.join("; ")}`);
  const controls = await a.evaluate(CONTROL_KEYS);
  const reached = new Set();
  await a.focus("#my-address");
  reached.add(await a.evaluate(() => window.__key(document.activeElement)));
  for (let i = 0; i < controls.length + 10 && reached.size < controls.length; i++) {
    await a.keyboard.press("Tab");
    const [k, shown] = await a.evaluate(() => { const e = document.activeElement, r = e.getBoundingClientRect();
      return [window.__key(e), r.top >= 0 && r.bottom <= innerHeight && r.left >= 0 && r.right <= innerWidth]; });
    if (!shown) throw new Error(`at 480x800 the focused ${k} is not in view`);
    reached.add(k);
  }
  const missed = controls.filter((k) => !reached.has(k));
  if (missed.length) throw new Error(`at 480x800 Tab never reached: ${missed.join(", ")}`);
  await a.evaluate(() => window.scrollTo(0, 0));
  await a.screenshot({ path: `${env.SHOTS}/narrow.png`, fullPage: true });
  await a.setViewportSize({ width: 1280, height: 800 });
  step(`at 480x800 nothing scrolls sideways and Tab reaches all ${controls.length} controls, each in view`);

  // evict from the owner's page: bob's page loses the network
  await a.focus("#set-nick");
  await tabTo(a, `(() => { const e = document.activeElement; return e && e.dataset.nick === "bob"; })()`, "bob");
  await a.keyboard.press("Enter");
  await tabTo(a, labelled("#details", "Evict"), "Evict");
  await a.keyboard.press("Enter");
  await a.waitForSelector("#dialog[open]");
  await a.waitForFunction(() => document.activeElement && document.activeElement.textContent === "Yes");
  await a.keyboard.press("Enter");
  await b.waitForSelector('section[data-network="lan"]', { state: "detached", timeout: 15000 });
  step("evicted from alice's page with the keyboard: bob's page no longer shows 'lan'");
  // manual approval; bob asks again (with the new password), alice approves, bob leaves
  await a.focus("#set-nick");
  await tabTo(a, actBtn("lan", "approval"), "approval");
  await a.keyboard.press("Enter");
  await a.waitForSelector(`${lanBtn("approval")}:text-is("Auto approval")`);
  await joinByKeyboard(b, "lan", "s3cret");
  await a.waitForSelector('section[data-network="lan"] button:text-is("Reject")', { timeout: 10000 });
  await a.focus("#set-nick");
  await tabTo(a, labelled('section[data-network="lan"]', "Reject"), "Reject");
  await a.keyboard.press("Enter");
  await a.waitForSelector('section[data-network="lan"] button:text-is("Reject")', { state: "detached", timeout: 10000 });
  await b.waitForSelector('section[data-network="lan"]', { state: "detached", timeout: 10000 });
  step("rejected a pending member with the keyboard: bob's page no longer shows 'lan'");
  await joinByKeyboard(b, "lan", "s3cret");
  await a.waitForSelector('section[data-network="lan"] button:text-is("Approve")', { timeout: 10000 });
  await a.focus("#set-nick");
  await tabTo(a, labelled('section[data-network="lan"]', "Approve"), "Approve");
  await a.keyboard.press("Enter");
  await b.waitForSelector('section[data-network="lan"] button[data-act="online"]');
  step("joined with the keyboard, approved with the keyboard");
  await b.focus("#set-nick");
  await tabTo(b, labelled('section[data-network="lan"]', "Leave"), "Leave");
  await b.keyboard.press("Enter");
  await b.waitForFunction(() => document.activeElement && document.activeElement.textContent === "Yes");
  await b.keyboard.press("Enter");
  await b.waitForSelector('section[data-network="lan"]', { state: "detached", timeout: 15000 });
  step("left with the keyboard");
  await a.focus("#set-nick");
  await tabTo(a, labelled('section[data-network="lan"]', "Delete"), "Delete");
  await a.keyboard.press("Enter");
  await a.waitForFunction(() => document.activeElement && document.activeElement.textContent === "Yes");
  await a.keyboard.press("Enter");
  await a.waitForSelector('section[data-network="lan"]', { state: "detached", timeout: 15000 });
  step("deleted with the keyboard");

  // alice's daemon stops: her page's stream ends, the page says so and polls; when the daemon
  // is back (same port, same token) the page opens a new stream. The failed requests while it
  // is away are the only console errors allowed.
  await a.waitForSelector('html[data-live="stream"]');
  const before = errors.length;
  await ask("stop alice");
  await a.waitForSelector('html[data-live="poll"]');
  await a.waitForSelector('#live:text-is("reconnecting…")');
  await ask("start alice");
  await a.waitForSelector('html[data-live="stream"]', { timeout: 15000 });
  await a.waitForSelector("#server-text:text-is('mediator connected')");
  await a.waitForSelector("#error", { state: "hidden" });
  const outage = errors.splice(before);
  // (a long poll in flight at shutdown is answered 503)
  const unexpected = outage.filter((e) => !/ERR_CONNECTION_REFUSED|Failed to fetch|net::ERR_|status of 503/.test(e));
  if (unexpected.length) throw new Error("console errors while the daemon was away:\n" + unexpected.join("\n"));
  step(`alice's daemon stopped and started: her page fell back to polling, then took a new stream (${outage.length} failed requests meanwhile)`);

  // a wrong token: the page says so, the API answered 403
  const c = await ctx.newPage();
  const statuses = [];
  c.on("response", (r) => { if (r.url().endsWith("/api")) statuses.push(r.status()); });
  await c.goto(env.BAD_URL);
  await c.waitForSelector("#error:not([hidden]) >> text=token is wrong");
  if (!statuses.includes(403)) throw new Error(`wrong token answered ${statuses}`);
  const streamAnswers = await c.evaluate(async () => [
    (await fetch("/ticket", { method: "POST", headers: { "X-Shoal-Token": "0".repeat(64) } })).status,
    (await fetch("/events")).status,
    (await fetch("/events?ticket=" + "0".repeat(32))).status]);
  if (streamAnswers.some((st) => st !== 403)) throw new Error(`the stream with a wrong token answered ${streamAnswers}`);
  if (await c.evaluate(() => document.documentElement.dataset.live) === "stream") throw new Error("a stream opened with a wrong token");
  step("a wrong token gets 403 (the API, the stream's ticket and the stream) and a clear message");

  if (errors.length) throw new Error("console errors:\n" + errors.join("\n"));
  step("no console errors");
} catch (e) {
  console.log("FAIL: " + (e && e.stack ? e.stack : e));
  try { await a_page.screenshot({ path: `${env.SHOTS}/failure.png` }); } catch (e2) { /* no page */ }
  process.exitCode = 1;
} finally {
  await browser.close();
  driver.close();           // else stdin keeps node running
}
