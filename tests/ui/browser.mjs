// The window in a real browser (Debian's chromium driven by playwright-core): two daemons'
// pages, as two users would use them. Run by tests/integ/test_ui_browser.py, which starts the
// mediator and the daemons and passes: ALICE_URL, BOB_URL (with #token), BAD_URL (a wrong
// token), SHOTS (a directory for screenshots), CHROMIUM (the binary).
// Prints one line per step; exits 1 at the first failure.
import { chromium } from "playwright-core";

const env = process.env;
const step = (s) => console.log("step: " + s);
const errors = [];
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
const actBtn = (net, act) => `(() => { const e = document.activeElement; return e && e.dataset.act === "${act}" && e.closest('section[data-network="${net}"]') !== null; })()`;
const labelled = (scope, label) => `(() => { const e = document.activeElement; return e && e.tagName === "BUTTON" && e.textContent === ${JSON.stringify(label)} && e.closest(${JSON.stringify(scope)}) !== null; })()`;
const focusedText = (page) => page.evaluate(() => document.activeElement && document.activeElement.textContent);

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
  for (let i = 0; i < 6 && !(await a.evaluate(() => document.activeElement.getAttribute("role") === "tab")); i++)
    await a.keyboard.press("Shift+Tab");
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

  // narrow window: still usable
  await a.setViewportSize({ width: 420, height: 800 });
  await a.waitForSelector('button.peer[data-nick="bob"]');
  await a.screenshot({ path: `${env.SHOTS}/narrow.png` });
  await a.setViewportSize({ width: 1280, height: 800 });

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
  await b.focus("#new-network");
  await b.keyboard.press("Enter");
  await b.keyboard.type("lan");
  await b.keyboard.press("Tab");
  await b.keyboard.type("s3cret");
  await b.keyboard.press("Tab");        // Join
  await b.keyboard.press("Enter");
  await b.waitForSelector('section[data-network="lan"]');
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

  // a wrong token: the page says so, the API answered 403
  const c = await ctx.newPage();
  const answers = [];
  c.on("response", (r) => { if (r.url().endsWith("/api")) answers.push(r.status()); });
  await c.goto(env.BAD_URL);
  await c.waitForSelector("#error:not([hidden]) >> text=token is wrong");
  if (!answers.includes(403)) throw new Error(`wrong token answered ${answers}`);
  step("a wrong token gets 403 and a clear message");

  if (errors.length) throw new Error("console errors:\n" + errors.join("\n"));
  step("no console errors");
} catch (e) {
  console.log("FAIL: " + (e && e.stack ? e.stack : e));
  try { await a_page.screenshot({ path: `${env.SHOTS}/failure.png` }); } catch (e2) { /* no page */ }
  process.exitCode = 1;
} finally {
  await browser.close();
}
