// The hosted login page in real headless Chromium with a CDP virtual authenticator: a person
// registers a passkey, signs out, and signs back in with it (by identifier, by autofill and by
// the passkey button); two more people come in by an emailed code and by a magic link; the
// page holds a session each time. Also: the page at 320 px and in German. Fails on any
// console error, page error, failed request or error answer (but the 401s of a magic-link
// poll, which mean "not opened yet"). Needs BASE (the server, on http://localhost:PORT),
// APP_ID, APP_ID_DE (an app whose default_language is de), OUTBOX (the server's outbox log)
// and ARTIFACTS.
import { mkdir, readFile } from "node:fs/promises";
import puppeteer from "puppeteer-core";

const { BASE, APP_ID, APP_ID_DE, OUTBOX, ARTIFACTS } = process.env;
const LOGIN = `${BASE}/login/${APP_ID}`;
const ANN = "ann@example.com";
const problems = [];

function fail(message) {
  throw new Error(message);
}

function claimsOf(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(Buffer.from(payload, "base64").toString("utf8"));
}

async function userOf(email) {
  const url = `${BASE}/v1/apps/${APP_ID}/users?identifier=${encodeURIComponent(email)}`;
  return (await (await fetch(url)).json()).user;
}

// The page shows a session for `email`: a JWT for that user in localStorage and the cookie.
async function session(page, email, { passkey = false } = {}) {
  await page.waitForSelector("#signed-in:not([hidden])", { timeout: 15000 });
  const token = await page.evaluate(() => localStorage.getItem("psg_auth_token"));
  if (!token) fail("no auth token in localStorage after login");
  const claims = claimsOf(token);
  const user = await userOf(email);
  if (!user || claims.sub !== user.id) fail(`token sub ${claims.sub} is not ${email}'s id`);
  if (passkey && !user.webauthn) fail(`${email} has no passkey after registering one`);
  if (!(claims.aud || []).includes(APP_ID)) fail("token audience is not the app");
  const refresh = await page.evaluate(() => localStorage.getItem("psg_refresh_token"));
  if (!refresh) fail("no refresh token in localStorage after login");
  const cookie = (await page.cookies()).find((c) => c.name === "psg_auth_token");
  if (!cookie || cookie.value !== token) fail("the psg_auth_token cookie does not hold the session");
  if (cookie.sameSite !== "Lax") fail(`the cookie is SameSite=${cookie.sameSite}, not Lax`);
  if (new URL(page.url()).hash) fail(`the same-origin redirect carries a fragment: ${page.url()}`);
  return token;
}

async function signOut(page) {
  await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
  await page.waitForSelector("#identify:not([hidden])");
  const left = await page.evaluate(() => localStorage.getItem("psg_auth_token"));
  if (left) fail("signing out left the token behind");
  if ((await page.cookies()).some((c) => c.name === "psg_auth_token")) fail("signing out left the cookie");
}

// Resolves once the page's main frame has navigated `count` more times.
function navigations(page, count) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`fewer than ${count} navigations`)), 15000);
    const seen = (frame) => {
      if (frame !== page.mainFrame() || --count > 0) return;
      clearTimeout(timer);
      page.off("framenavigated", seen);
      resolve();
    };
    page.on("framenavigated", seen);
  });
}

async function typeIdentifier(page, email) {
  await page.click("#identifier", { clickCount: 3 });
  await page.type("#identifier", email);
}

// The newest outbox message to `to` that matches `pattern`, once the server has written it.
async function message(to, pattern) {
  for (let i = 0; i < 100; i++) {
    const lines = (await readFile(OUTBOX, "utf8").catch(() => "")).split("\n").reverse();
    const found = lines.find((l) => l.split("\t")[2] === to && pattern.test(l));
    if (found) return found.match(pattern)[1];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  fail(`no message to ${to} matching ${pattern} in ${OUTBOX}`);
}

function watch(page) {
  // A pending magic link answers its poll with 401: the one error answer that is expected.
  const polled = (url, status) => status === 401 && url.endsWith("/magic-link/status");
  page.on("console", (m) => {
    if (m.type() !== "error") return;
    if (polled(m.location()?.url || "", 401) && m.text().includes("401")) return;
    problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400 && !polled(r.url(), r.status())) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
}

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const timer = setTimeout(() => {
  console.error(`browser test timed out${problems.length ? `; problems:\n${problems.join("\n")}` : ""}`);
  process.exit(1);
}, 90000);

try {
  const page = await browser.newPage();
  watch(page);

  const cdp = await page.createCDPSession();
  await cdp.send("WebAuthn.enable", { enableUI: false });
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  // Presence on: the virtual authenticator answers at once; off: requests wait, as a
  // pending autofill request waits for a person to pick a passkey.
  const presence = (enabled) =>
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled });

  // The page as it opens, on a phone-sized screen and on a desktop one.
  await mkdir(ARTIFACTS, { recursive: true });
  await presence(false);
  await page.setViewport({ width: 320, height: 640 });
  await page.goto(LOGIN, { waitUntil: "networkidle0" });
  await page.screenshot({ path: `${ARTIFACTS}/login-page-320px.png`, fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
  if (overflow > 320) fail(`the page is ${overflow} px wide at 320 px`);
  await page.setViewport({ width: 800, height: 600 });
  await page.goto(LOGIN, { waitUntil: "networkidle0" });
  await page.screenshot({ path: `${ARTIFACTS}/login-page.png`, fullPage: true });
  const label = await page.$eval("label[for=identifier]", (l) => l.textContent);
  if (label.trim() !== "Email address") fail(`the identifier field is labelled "${label}"`);
  const status = await page.$eval("#status", (s) => s.textContent);
  if (status.trim()) fail(`the page opens with a message: ${status}`);
  await presence(true);

  // Register: a new person, a new passkey.
  await typeIdentifier(page, ANN);
  await Promise.all([page.waitForNavigation({ timeout: 15000 }), page.click("#identify button[type=submit]")]);
  const first = await session(page, ANN, { passkey: true });
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  if (credentials.length !== 1 || !credentials[0].isResidentCredential) {
    fail(`expected one discoverable credential, found ${JSON.stringify(credentials)}`);
  }

  // Log in with the passkey, naming the account (the pending autofill request is dropped).
  await presence(false);
  await signOut(page);
  await typeIdentifier(page, ANN);
  const named = page.waitForNavigation({ timeout: 15000 });
  await page.click("#identify button[type=submit]");
  await presence(true);
  await named;
  const second = await session(page, ANN, { passkey: true });

  // Autofill: the page asks for a passkey with conditional mediation as it loads; the
  // authenticator answering at once stands for the person picking it from the field.
  const signOutThenIn = navigations(page, 2);
  await page.click("#sign-out");
  await signOutThenIn;
  const third = await session(page, ANN, { passkey: true });

  // The passkey button without an identifier: the passkey's user handle names the user.
  await presence(false);
  await signOut(page);
  const chosen = page.waitForNavigation({ timeout: 15000 });
  await page.click("#passkey");
  await presence(true);
  await chosen;
  const fourth = await session(page, ANN, { passkey: true });
  for (const token of [second, third, fourth]) {
    if (claimsOf(token).sub !== claimsOf(first).sub) fail("a passkey login found another user");
  }
  await page.screenshot({ path: `${ARTIFACTS}/signed-in.png` });

  // The passcode fallback: a new person asks for a code by email and types it in.
  await presence(false);
  await signOut(page);
  const BEN = "ben@example.com";
  await typeIdentifier(page, BEN);
  await page.click("#send-code");
  await page.waitForSelector("#code:not([hidden])");
  await page.type("#otp", await message(BEN, /code is (\w+)\./));
  await Promise.all([page.waitForNavigation({ timeout: 15000 }), page.click("#code button[type=submit]")]);
  await session(page, BEN);

  // The magic-link fallback: the link, opened in another tab, leads back to this page and
  // signs in there; the first tab, polling, signs in by itself.
  await signOut(page);
  const CY = "cy@example.com";
  await typeIdentifier(page, CY);
  await page.click("#send-link");
  const link = await message(CY, /(https?:\/\/\S+[?&]psg_magic_link=[\w-]+)/);
  if (!link.startsWith(`${LOGIN}?`)) fail(`the link does not lead back to the page: ${link}`);
  const waiting = page.waitForNavigation({ timeout: 15000 });
  const other = await browser.newPage();
  watch(other);
  await other.goto(link);
  await session(other, CY);
  if (new URL(other.url()).search) fail(`the link's token stayed in the address: ${other.url()}`);
  await waiting;
  await session(page, CY);
  await other.close();

  // An app whose default language is German.
  await presence(false);
  await page.goto(`${BASE}/login/${APP_ID_DE}`, { waitUntil: "networkidle0" });
  const german = await page.evaluate(() => ({
    lang: document.documentElement.lang,
    label: document.querySelector("label[for=identifier]").textContent,
    button: document.querySelector("#identify button").textContent,
  }));
  if (german.lang !== "de" || german.label !== "E-Mail-Adresse" || german.button !== "Weiter") {
    fail(`the German page reads ${JSON.stringify(german)}`);
  }
  await page.screenshot({ path: `${ARTIFACTS}/login-page-de.png` });

  if (problems.length) fail(`the page reported problems:\n${problems.join("\n")}`);
  console.log(
    "hosted login page: registered, signed out, signed in with the passkey by identifier, " +
      "autofill and button; signed in by emailed code and by magic link; 320 px; German",
  );
} finally {
  clearTimeout(timer);
  await browser.close();
}
