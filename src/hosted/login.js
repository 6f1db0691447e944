// The hosted login page: passkeys first (with autofill), codes and magic links as fallbacks.
// It talks to the public Auth API of its own server and keeps the session as passage-js does.
"use strict";

const STRINGS = {
  en: {
    identifier_label: "Email address",
    identifier_label_phone: "Phone number",
    identifier_label_both: "Email or phone number",
    lead: "Sign in or create an account.",
    continue: "Continue",
    passkey: "Sign in with a passkey",
    send_code: "Send me a code",
    send_code_email: "Email me a code",
    send_code_phone: "Text me a code",
    send_link: "Send me a link",
    send_link_email: "Email me a link",
    send_link_phone: "Text me a link",
    code_label: "The code we sent you",
    verify: "Verify",
    sign_out: "Sign out",
    enter_identifier: "Enter your email address or phone number first.",
    working: "One moment…",
    creating: "Creating your passkey…",
    confirm: "Confirm with your passkey…",
    code_sent: "We sent you a code.",
    link_sent: "We sent you a link. Open it on any device; this page continues by itself.",
    link_waited: "The link was not opened in time. Ask for a new one.",
    no_passkey: "There is no passkey for this account yet: use a code or a link.",
    no_signup: "There is no account for this address.",
    no_webauthn: "This browser cannot use passkeys here: use a code or a link.",
    cancelled: "The passkey request was cancelled.",
    signed_in_as: "Signed in as {who}.",
    signed_in: "Signed in. Taking you on…",
    failed: "Something went wrong. Try again.",
  },
  de: {
    identifier_label: "E-Mail-Adresse",
    identifier_label_phone: "Telefonnummer",
    identifier_label_both: "E-Mail-Adresse oder Telefonnummer",
    lead: "Melden Sie sich an oder erstellen Sie ein Konto.",
    continue: "Weiter",
    passkey: "Mit Passkey anmelden",
    send_code: "Code senden",
    send_code_email: "Code per E-Mail senden",
    send_code_phone: "Code per SMS senden",
    send_link: "Link senden",
    send_link_email: "Link per E-Mail senden",
    send_link_phone: "Link per SMS senden",
    code_label: "Der Code, den wir Ihnen gesendet haben",
    verify: "Bestätigen",
    sign_out: "Abmelden",
    enter_identifier: "Geben Sie zuerst Ihre E-Mail-Adresse oder Telefonnummer ein.",
    working: "Einen Moment…",
    creating: "Ihr Passkey wird erstellt…",
    confirm: "Bestätigen Sie mit Ihrem Passkey…",
    code_sent: "Wir haben Ihnen einen Code gesendet.",
    link_sent: "Wir haben Ihnen einen Link gesendet. Öffnen Sie ihn auf einem beliebigen Gerät; diese Seite fährt dann fort.",
    link_waited: "Der Link wurde nicht rechtzeitig geöffnet. Fordern Sie einen neuen an.",
    no_passkey: "Für dieses Konto gibt es noch keinen Passkey: Verwenden Sie einen Code oder Link.",
    no_signup: "Für diese Adresse gibt es kein Konto.",
    no_webauthn: "Dieser Browser kann hier keine Passkeys verwenden: Verwenden Sie einen Code oder Link.",
    cancelled: "Die Passkey-Anfrage wurde abgebrochen.",
    signed_in_as: "Angemeldet als {who}.",
    signed_in: "Angemeldet. Sie werden weitergeleitet…",
    failed: "Etwas ist schiefgegangen. Bitte erneut versuchen.",
  },
};

const root = document.getElementById("login");
const app = {
  id: root.dataset.appId,
  authOrigin: root.dataset.authOrigin,
  redirectUrl: root.dataset.redirectUrl,
  identifier: root.dataset.identifier,
  publicSignup: root.dataset.publicSignup === "true",
};
const api = `/v1/apps/${encodeURIComponent(app.id)}`;
const text = STRINGS[document.documentElement.lang] || STRINGS.en;
const $ = (id) => document.getElementById(id);
let pendingOtp = null;
// The pending autofill request: its controller and its promise, which settles once the
// browser has let the request go (a new WebAuthn request before then is refused).
let autofill = null;
// Set while a step runs: the autofill request waits for it to end.
let stepping = false;
// Set once the page is on its way to the app: nothing new starts then.
let leaving = false;
// Bumped by every link sent, so that only the newest link's poll goes on.
let linkPoll = 0;

function t(key, values = {}) {
  return (text[key] || STRINGS.en[key] || key).replace(/\{(\w+)\}/g, (_, k) => values[k] ?? "");
}

function say(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function busy(on) {
  for (const button of root.querySelectorAll("button")) button.disabled = on;
}

// Base64url without padding <-> bytes, as the Auth API writes WebAuthn binary fields.
function fromB64url(value) {
  const b64 = value.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(raw, (c) => c.charCodeAt(0)).buffer;
}

function toB64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let raw = "";
  for (const b of bytes) raw += String.fromCharCode(b);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function call(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(api + path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const error = new Error(data.error || t("failed"));
    error.status = response.status;
    error.code = data.code;
    throw error;
  }
  return data;
}

function creationOptions(challenge) {
  const o = structuredClone(challenge.publicKey);
  o.challenge = fromB64url(o.challenge);
  o.user.id = fromB64url(o.user.id);
  o.excludeCredentials = (o.excludeCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return o;
}

function requestOptions(challenge) {
  const o = structuredClone(challenge.publicKey);
  o.challenge = fromB64url(o.challenge);
  o.allowCredentials = (o.allowCredentials || []).map((c) => ({ ...c, id: fromB64url(c.id) }));
  return o;
}

function credentialJson(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    response.transports = r.getTransports ? r.getTransports() : [];
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    authenticatorAttachment: credential.authenticatorAttachment || undefined,
    response,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

function identifier() {
  return $("identifier").value.trim();
}

async function cancelAutofill() {
  const pending = autofill;
  autofill = null;
  if (!pending) return;
  pending.controller.abort();
  await pending.settled;
}

// Keeps the session where passage-js keeps it, then goes to the app.
function signedIn(result) {
  localStorage.setItem("psg_auth_token", result.auth_token);
  if (result.refresh_token) localStorage.setItem("psg_refresh_token", result.refresh_token);
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `psg_auth_token=${result.auth_token}; Path=/; SameSite=Lax${secure}`;
  say(t("signed_in"));
  leaving = true;
  location.assign(destination(result));
}

// The app's redirect URL, a path on its auth_origin. Another origin cannot read this page's
// storage, so it gets the token in the fragment, which browsers never send to a server.
function destination(result) {
  const origin = app.authOrigin || location.origin;
  let url;
  try {
    url = new URL(result.redirect_url || app.redirectUrl || "/", origin);
  } catch (_) {
    url = new URL("/", location.origin);
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") url = new URL("/", location.origin);
  if (url.origin !== location.origin) url.hash = `psg_auth_token=${encodeURIComponent(result.auth_token)}`;
  return url.href;
}

async function registerPasskey(who) {
  say(t("creating"));
  const started = await call("POST", "/register/webauthn/start", { identifier: who });
  const credential = await navigator.credentials.create({ publicKey: creationOptions(started.handshake.challenge) });
  const done = await call("POST", "/register/webauthn/finish", {
    handshake_id: started.handshake.id,
    handshake_response: credentialJson(credential),
    user_id: started.user.id,
  });
  signedIn(done.auth_result);
}

async function loginWithPasskey(who, mediation, signal) {
  const started = await call("POST", "/login/webauthn/start", who ? { identifier: who } : {});
  if (!mediation) say(t("confirm"));
  const options = { publicKey: requestOptions(started.handshake.challenge) };
  if (mediation) options.mediation = mediation;
  if (signal) options.signal = signal;
  const credential = await navigator.credentials.get(options);
  const finish = { handshake_id: started.handshake.id, handshake_response: credentialJson(credential) };
  if (started.user) finish.user_id = started.user.id;
  const done = await call("POST", "/login/webauthn/finish", finish);
  signedIn(done.auth_result);
}

async function sendCode(who) {
  const path = (await knownUser(who)) ? "/login/otp" : "/register/otp";
  const sent = await call("POST", path, { identifier: who });
  pendingOtp = sent.otp_id;
  $("code").hidden = false;
  $("otp").focus();
  say(t("code_sent"));
}

async function sendLink(who) {
  const path = (await knownUser(who)) ? "/login/magic-link" : "/register/magic-link";
  const body = { identifier: who };
  // On the app's own origin the link leads back here; elsewhere to the app's login_url.
  if (location.origin === app.authOrigin) body.magic_link_path = location.pathname;
  const sent = await call("POST", path, body);
  say(t("link_sent"));
  pollLink(sent.magic_link.id, ++linkPoll);
}

// Waits, without holding the page, for the link to be opened here or on another device.
async function pollLink(id, generation) {
  const until = Date.now() + 10 * 60 * 1000;
  while (Date.now() < until && generation === linkPoll) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    if (generation !== linkPoll) return;
    try {
      const done = await call("POST", "/magic-link/status", { id });
      linkPoll++;
      return signedIn(done.auth_result);
    } catch (e) {
      // 401 until the link is opened; anything else ends the wait.
      if (e.status !== 401) return say(e.message || t("failed"), true);
    }
  }
  if (generation === linkPoll) say(t("link_waited"), true);
}

// A magic link opened on this page: the token leaves the address bar, then signs in.
async function openLink(token) {
  history.replaceState(null, "", location.pathname);
  say(t("working"));
  const done = await call("PATCH", "/magic-link/activate", { magic_link: token });
  signedIn(done.auth_result);
}

async function knownUser(who) {
  const found = await call("GET", `/users?identifier=${encodeURIComponent(who)}`);
  return found.user;
}

function canUsePasskeys() {
  return window.PublicKeyCredential !== undefined && window.isSecureContext;
}

// Runs one step, showing what fails; a cancelled passkey prompt is not an error to shout.
// The autofill request makes way for the step and comes back after it, unless the page leaves.
async function attempt(step) {
  stepping = true;
  busy(true);
  try {
    await cancelAutofill();
    // The autofill request may have signed in while it was let go.
    if (!leaving) await step();
  } catch (e) {
    if (e.name === "NotAllowedError" || e.name === "AbortError") say(t("cancelled"), true);
    else say(e.message || t("failed"), true);
  } finally {
    busy(false);
    stepping = false;
    if (!leaving && !$("identify").hidden) startAutofill();
  }
}

function needIdentifier(step) {
  return () => attempt(async () => {
    const who = identifier();
    if (!who) {
      $("identifier").focus();
      return say(t("enter_identifier"), true);
    }
    await step(who);
  });
}

async function proceed(who) {
  const user = await knownUser(who);
  if (!canUsePasskeys()) return say(t("no_webauthn"), true);
  if (user && user.webauthn) return loginWithPasskey(who);
  if (user) return say(t("no_passkey"), true);
  if (!app.publicSignup) return say(t("no_signup"), true);
  return registerPasskey(who);
}

// Offers saved passkeys in the identifier field's autofill, where the browser can.
async function startAutofill() {
  if (autofill || stepping || !canUsePasskeys() || !PublicKeyCredential.isConditionalMediationAvailable) return;
  if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
  if (autofill || stepping || leaving) return;
  const controller = new AbortController();
  // Nobody asked for this request: ended without a passkey, the page stays as it is; a
  // passkey picked from the field but refused is worth saying.
  const settled = loginWithPasskey("", "conditional", controller.signal).catch((e) => {
    if (e.name !== "AbortError" && e.name !== "NotAllowedError") say(e.message || t("failed"), true);
  });
  const pending = { controller, settled };
  autofill = pending;
  settled.then(() => {
    if (autofill === pending) autofill = null;
  });
}

function currentSession() {
  const token = localStorage.getItem("psg_auth_token");
  if (!token) return null;
  try {
    const claims = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    const audience = [].concat(claims.aud || []);
    if (claims.exp * 1000 > Date.now() && audience.includes(app.id)) return claims;
  } catch (_) {
    // An unreadable token is no session.
  }
  return null;
}

async function signOut() {
  const refresh = localStorage.getItem("psg_refresh_token");
  localStorage.removeItem("psg_auth_token");
  localStorage.removeItem("psg_refresh_token");
  document.cookie = "psg_auth_token=; Path=/; Max-Age=0";
  if (refresh) await call("DELETE", `/tokens?refresh_token=${encodeURIComponent(refresh)}`).catch(() => {});
  location.reload();
}

function translate() {
  for (const el of root.querySelectorAll("[data-text]")) {
    const specific = `${el.dataset.text}_${app.identifier}`;
    el.textContent = t(specific in STRINGS.en ? specific : el.dataset.text);
  }
  const mode = { email: "email", phone: "tel" }[app.identifier];
  if (mode) $("identifier").setAttribute("inputmode", mode);
}

function showSession(session) {
  $("identify").hidden = true;
  $("alternatives").hidden = true;
  $("signed-in").hidden = false;
  $("signed-in-as").textContent = t("signed_in_as", { who: session.sub });
  $("sign-out").addEventListener("click", () => attempt(signOut));
}

function start() {
  translate();
  const link = new URLSearchParams(location.search).get("psg_magic_link");
  const session = currentSession();
  if (session && !link) return showSession(session);
  $("identify").addEventListener("submit", (e) => {
    e.preventDefault();
    needIdentifier(proceed)();
  });
  $("passkey").addEventListener("click", () => attempt(() => loginWithPasskey(identifier())));
  $("passkey").hidden = !canUsePasskeys();
  $("send-code").addEventListener("click", needIdentifier(sendCode));
  $("send-link").addEventListener("click", needIdentifier(sendLink));
  $("code").addEventListener("submit", (e) => {
    e.preventDefault();
    attempt(async () => {
      const done = await call("POST", "/otp/activate", { otp_id: pendingOtp, otp: $("otp").value.trim() });
      signedIn(done.auth_result);
    });
  });
  // A failed link leaves the form as usual (attempt starts the autofill then).
  if (link) attempt(() => openLink(link));
  else startAutofill();
}

start();
