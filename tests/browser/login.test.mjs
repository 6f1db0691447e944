// The hosted login page in real headless Chromium with a CDP virtual authenticator: a person
// registers a passkey, signs out, signs back in with it (by identifier, by autofill and by the
// passkey button), and
// the page holds a session each time. Fails on any console error, page error or failed
// request. Needs BASE (the server, on http://localhost:PORT), APP_ID and ARTIFACTS.
import { mkdir } from "node:fs/promises";
import puppeteer from "puppeteer-core";

const { BASE, APP_ID, ARTIFACTS } = process.env;
const EMAIL = "ann@example.com";
const problems = [];

function fail(message) {
  throw new Error(message);
}

function claimsOf(token) {
  const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(Buffer.from(payload, "base64").toString("utf8"));
}

async function api(path) {
  const response = await fetch(`${BASE}/v1/apps/${APP_ID}${path}`);
  return response.json();
}

async function session(page) {
  await page.waitForSelector("#signed-in:not([hidden])", { timeout: 15000 });
  const token = await page.evaluate(() => localStorage.getItem("psg_auth_token"));
  if (!token) fail("no auth token in localStorage after login");
  const claims = claimsOf(token);
  const found = await api(`/users?identifier=${encodeURIComponent(EMAIL)}`);
  if (!found.user || claims.sub !== found.user.id) fail(`token sub ${claims.sub} is not ${EMAIL}'s id`);
  if (!found.user.webauthn) fail("the user has no passkey after registering one");
  if (!(claims.aud || []).includes(APP_ID)) fail("token audience is not the app");
  const cookie = (await page.cookies()).find((c) => c.name === "psg_auth_token");
  if (!cookie || cookie.value !== token) fail("the psg_auth_token cookie does not hold the session");
  return token;
}

async function signOut(page) {
  await Promise.all([page.waitForNavigation(), page.click("#sign-out")]);
  await page.waitForSelector("#identify:not([hidden])");
  const left = await page.evaluate(() => localStorage.getItem("psg_auth_token"));
  if (left) fail("signing out left the token behind");
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

async function submitIdentifier(page) {
  await page.click("#identifier", { clickCount: 3 });
  await page.type("#identifier", EMAIL);
  await Promise.all([page.waitForNavigation({ timeout: 15000 }), page.click("#identify button[type=submit]")]);
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
  console.error("browser test timed out");
  process.exit(1);
}, 90000);

try {
  const page = await browser.newPage();
  page.on("console", (m) => m.type() === "error" && problems.push(`console: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));

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

  await page.goto(`${BASE}/login/${APP_ID}`, { waitUntil: "networkidle0" });
  await page.waitForSelector("#identifier");
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: `${ARTIFACTS}/login-page.png`, fullPage: true });
  const label = await page.$eval("label[for=identifier]", (l) => l.textContent);
  if (!label.trim()) fail("the identifier field has no label");
  const status = await page.$eval("#status", (s) => s.textContent);
  if (status.trim()) fail(`the page opens with a message: ${status}`);

  // Presence on: the virtual authenticator answers at once; off: requests wait, as a
  // pending autofill request waits for a person to pick a passkey.
  const presence = (enabled) =>
    cdp.send("WebAuthn.setAutomaticPresenceSimulation", { authenticatorId, enabled });

  // Register: a new person, a new passkey.
  await submitIdentifier(page);
  const first = await session(page);
  const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId });
  if (credentials.length !== 1 || !credentials[0].isResidentCredential) {
    fail(`expected one discoverable credential, found ${JSON.stringify(credentials)}`);
  }

  // Log in with the passkey, naming the account (the pending autofill request is dropped).
  await presence(false);
  await signOut(page);
  await page.type("#identifier", EMAIL);
  const named = page.waitForNavigation({ timeout: 15000 });
  await page.click("#identify button[type=submit]");
  await presence(true);
  await named;
  const second = await session(page);

  // Autofill: the page asks for a passkey with conditional mediation as it loads; the
  // authenticator answering at once stands for the person picking it from the field.
  const signOutThenIn = navigations(page, 2);
  await page.click("#sign-out");
  await signOutThenIn;
  const third = await session(page);

  // The passkey button without an identifier: the passkey's user handle names the user.
  await presence(false);
  await signOut(page);
  const chosen = page.waitForNavigation({ timeout: 15000 });
  await page.click("#passkey");
  await presence(true);
  await chosen;
  const fourth = await session(page);
  for (const token of [second, third, fourth]) {
    if (claimsOf(token).sub !== claimsOf(first).sub) fail("a passkey login found another user");
  }
  await page.screenshot({ path: `${ARTIFACTS}/signed-in.png` });

  if (problems.length) fail(`the page reported problems:\n${problems.join("\n")}`);
  console.log("hosted login page: registered, signed out, signed in with the passkey by identifier, autofill and button");
} finally {
  clearTimeout(timer);
  await browser.close();
}
