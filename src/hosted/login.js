// The hosted login page: passkeys first (with autofill), codes and magic links as fallbacks.
// It talks to the public Auth API of its own server and keeps the session as passage-js does.
"use strict";

const STRINGS = {
  en: {
    identifier_label: "Email address",
    identifier_label_phone: "Phone number",
    identifier_label_both: "Email or phone number",
    continue: "Continue",
    passkey: "Sign in with a passkey",
    send_code: "Send me a code",
    send_link: "Send me a link",
    code_label: "The code we sent you",
    verify: "Verify",
    sign_out: "Sign out",
    enter_identifier: "Enter your email address or phone number first.",
    working: "One moment…",
    creating: "Creating your passkey…",
    confirm: "Confirm with your passkey…",
    code_sent: "We sent you a code.",
    link_sent: "We sent you a link. Open it on any device; this page continues by itself.",
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
    continue: "Weiter",
    passkey: "Mit Passkey anmelden",
    send_code: "Code senden",
    send_link: "Link senden",
    code_label: "Der Code, den wir Ihnen gesendet haben",
    verify: "Bestätigen",
    sign_out: "Abmelden",
    enter_identifier: "Geben Sie zuerst Ihre E-Mail-Adresse oder Telefonnummer ein.",
    working: "Einen Moment…",
    creating: "Ihr Passkey wird erstellt…",
    confirm: "Bestätigen Sie mit Ihrem Passkey…",
    code_sent: "Wir haben Ihnen einen Code gesendet.",
    link_sent: "Wir haben Ihnen einen Link gesendet. Öffnen Sie ihn auf einem beliebigen Gerät; diese Seite fährt dann fort.",
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
let autofill = null;

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
    transports: response.transports,
    clientExtensionResults: credential.getClientExtensionResults(),
  };
}

function identifier() {
  return $("identifier").value.trim();
}

function cancelAutofill() {
  if (autofill) autofill.abort();
  autofill = null;
}

// Keeps the session where passage-js keeps it, then goes to the app.
function signedIn(result) {
  localStorage.setItem("psg_auth_token", result.auth_token);
  if (result.refresh_token) localStorage.setItem("psg_refresh_token", result.refresh_token);
  const secure = location.protocol === "https:" ? "; Secure" : "";
  document.cookie = `psg_auth_token=${result.auth_token}; Path=/; SameSite=Lax${secure}`;
  say(t("signed_in"));
  const target = result.redirect_url || app.redirectUrl || "/";
  if (app.authOrigin && app.authOrigin !== location.origin) {
    location.assign(`${app.authOrigin}${target}#psg_auth_token=${encodeURIComponent(result.auth_token)}`);
  } else {
    location.assign(target);
  }
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
  const done = await call("POST", "/login/webauthn/finish", {
    handshake_id: started.handshake.id,
    handshake_response: credentialJson(credential),
    user_id: started.user ? started.user.id : "",
  });
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
  const sent = await call("POST", path, { identifier: who });
  say(t("link_sent"));
  const id = sent.magic_link.id;
  const until = Date.now() + 10 * 60 * 1000;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    try {
      const done = await call("POST", "/magic-link/status", { id });
      return signedIn(done.auth_result);
    } catch (e) {
      if (e.status !== 401) throw e;
    }
  }
}

async function knownUser(who) {
  const found = await call("GET", `/users?identifier=${encodeURIComponent(who)}`);
  return found.user;
}

function canUsePasskeys() {
  return window.PublicKeyCredential !== undefined && window.isSecureContext;
}

// Runs one step, showing what fails; a cancelled passkey prompt is not an error to shout.
async function attempt(step) {
  cancelAutofill();
  busy(true);
  try {
    await step();
  } catch (e) {
    if (e.name === "NotAllowedError" || e.name === "AbortError") say(t("cancelled"), true);
    else say(e.message || t("failed"), true);
    startAutofill();
  } finally {
    busy(false);
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
  if (!canUsePasskeys() || !PublicKeyCredential.isConditionalMediationAvailable) return;
  if (!(await PublicKeyCredential.isConditionalMediationAvailable())) return;
  const controller = new AbortController();
  autofill = controller;
  // Nobody asked for this request: when it ends without a passkey, the page stays as it is.
  loginWithPasskey("", "conditional", controller.signal).catch(() => {});
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
  for (const el of root.querySelectorAll("[data-text]")) el.textContent = t(el.dataset.text);
  if (app.identifier !== "email") {
    $("identifier").previousElementSibling.textContent = t(`identifier_label_${app.identifier}`);
    $("identifier").setAttribute("inputmode", app.identifier === "phone" ? "tel" : "email");
  } else {
    $("identifier").setAttribute("inputmode", "email");
  }
}

function start() {
  translate();
  const session = currentSession();
  if (session) {
    $("identify").hidden = true;
    $("alternatives").hidden = true;
    $("signed-in").hidden = false;
    $("signed-in-as").textContent = t("signed_in_as", { who: session.sub });
    $("sign-out").addEventListener("click", () => attempt(signOut));
    return;
  }
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
  startAutofill();
}

start();
