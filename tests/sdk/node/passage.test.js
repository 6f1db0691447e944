// @passageidentity/passage-node 2.12.1 against a running Keyhaven; run by ../run.sh.
const { describe, test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { createRemoteJWKSet } = require('jose'); // the SDK's own JWKS library
const { Passage, PassageError, MagicLinkChannel, MagicLinkType, UserStatus } = require('@passageidentity/passage-node');

const { BASE, APP_ID, API_KEY, OTHER_APP_ID, OTHER_API_KEY, DATA_DIR } = process.env;
const OUTBOX = path.join(DATA_DIR, 'outbox.log');

// Override 1: the generated Manage API client's basePath is https://api.passage.id/v1;
// the SDK's `fetchApi` option sees every request URL.
const fetchApi = (url, init) => fetch(String(url).replace('https://api.passage.id', BASE), init);

function passage(appID = APP_ID, apiKey = API_KEY, authStrategy = 'HEADER') {
  const psg = new Passage({ appID, apiKey, fetchApi, authStrategy });
  // Override 2: auth.jwks is jose's createRemoteJWKSet for https://auth.passage.id/...,
  // fetched with node:https (not fetchApi), so replace it with one for Keyhaven.
  psg.auth.jwks = createRemoteJWKSet(new URL(`${BASE}/v1/apps/${appID}/.well-known/jwks.json`));
  return psg;
}

const email = () => `sdk-node-${crypto.randomUUID().slice(0, 12)}@example.test`;

async function post(p, body) {
  const res = await fetch(`${BASE}/v1${p}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  assert.ok(res.ok, `POST ${p} → ${res.status} ${await res.clone().text()}`);
  return res.json();
}

// The last one-time code sent to `to`, from the server's outbox.log.
async function otpCode(to) {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const text = fs.existsSync(OUTBOX) ? fs.readFileSync(OUTBOX, 'utf8') : '';
    const codes = text.split('\n').map((l) => l.split('\t'))
      .filter((f) => f.length >= 5 && f[2] === to)
      .map((f) => f[4].match(/\b\d{6}\b/)).filter(Boolean);
    if (codes.length) return codes.at(-1)[0];
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no code for ${to} in ${OUTBOX}`);
}

// An auth_result (auth and refresh token) through {flow}/otp + otp/activate (raw HTTP).
async function login(appId, identifier, flow = 'login') {
  const { otp_id } = await post(`/apps/${appId}/${flow}/otp`, { identifier });
  const { auth_result } = await post(`/apps/${appId}/otp/activate`, { otp: await otpCode(identifier), otp_id });
  return auth_result;
}

describe('passage-node', { timeout: 60_000 }, () => {
  test('get app', async () => {
    const app = await passage().getApp();
    assert.equal(app.id, APP_ID);
    assert.equal(app.name, 'sdk-app');
  });

  test('user lifecycle', async () => {
    const psg = passage();
    const address = email();
    const user = await psg.user.create({ email: address });
    assert.ok(user.id);
    assert.equal(user.email, address);
    assert.equal(user.status, UserStatus.Active);

    const got = await psg.user.get(user.id);
    assert.deepEqual([got.id, got.email], [user.id, address]);

    const newAddress = email();
    const updated = await psg.user.update(user.id, { email: newAddress, phone: '+14155552671' });
    assert.deepEqual([updated.id, updated.email, updated.phone], [user.id, newAddress, '+14155552671']);
    assert.equal((await psg.user.get(user.id)).email, newAddress);

    // The app defines no user_metadata fields, so an unknown field is refused.
    await assert.rejects(psg.user.update(user.id, { user_metadata: { plan: 'pro' } }),
      (e) => e instanceof PassageError && e.statusCode === 400);

    assert.deepEqual(await psg.user.listDevices(user.id), []);

    assert.equal((await psg.user.deactivate(user.id)).status, UserStatus.Inactive);
    assert.equal((await psg.user.get(user.id)).status, UserStatus.Inactive);
    assert.equal((await psg.user.activate(user.id)).status, UserStatus.Active);
    assert.equal((await psg.user.get(user.id)).status, UserStatus.Active);

    assert.equal(await psg.user.delete(user.id), true);
    await assert.rejects(psg.user.get(user.id),
      (e) => e instanceof PassageError && e.statusCode === 404 && e.errorCode === 'user_not_found');
  });

  test('get user by identifier', async () => {
    const psg = passage();
    const address = email();
    const user = await psg.user.create({ email: address });
    assert.equal((await psg.user.getByIdentifier(address.toUpperCase())).id, user.id);
  });

  test('create magic link', async () => {
    const psg = passage();
    const address = email();
    const user = await psg.user.create({ email: address });

    const link = await psg.auth.createMagicLink({
      userId: user.id, channel: MagicLinkChannel.Email, type: MagicLinkType.Login, send: false,
    });
    assert.ok(link.id && link.secret);
    assert.ok(link.url.startsWith('http://localhost:3000') && link.url.includes(link.secret));
    assert.deepEqual([link.app_id, link.user_id, link.identifier], [APP_ID, user.id, address]);
    assert.equal(link.type, MagicLinkType.Login);
    assert.equal(link.activated, false);
    assert.ok(link.ttl > 0);

    const byEmail = await psg.auth.createMagicLink({ email: address, type: MagicLinkType.Login, send: false });
    assert.deepEqual([byEmail.user_id, byEmail.identifier], [user.id, address]);
    assert.notEqual(byEmail.id, link.id);
    assert.notEqual(byEmail.secret, link.secret);
  });

  test('validate auth tokens', async () => {
    const psg = passage();
    const address = email();
    const userId = (await psg.user.create({ email: address })).id;
    const token = (await login(APP_ID, address)).auth_token;

    assert.equal(await psg.auth.validateJwt(token), userId);
    assert.equal(await psg.validAuthToken(token), userId);
    assert.equal(await psg.authenticateRequest({ headers: { authorization: `Bearer ${token}` } }), userId);
    const cookies = passage(APP_ID, API_KEY, 'COOKIE');
    assert.equal(await cookies.authenticateRequest({ headers: { cookie: `a=b; psg_auth_token=${token}` } }), userId);

    const [head, payload, signature] = token.split('.');
    const flipped = signature[10] === 'A' ? 'B' : 'A';
    const tampered = `${head}.${payload}.${signature.slice(0, 10)}${flipped}${signature.slice(11)}`;
    await assert.rejects(psg.auth.validateJwt(tampered), (e) => e instanceof PassageError && /signature/.test(e.message));

    const other = (await login(OTHER_APP_ID, email(), 'register')).auth_token;
    assert.ok(await passage(OTHER_APP_ID, OTHER_API_KEY).auth.validateJwt(other));
    await assert.rejects(psg.auth.validateJwt(other), PassageError);
  });

  test('revoke refresh tokens', async () => {
    const psg = passage();
    const address = email();
    const user = await psg.user.create({ email: address });
    const first = await login(APP_ID, address);
    const { refresh_token } = (await post(`/apps/${APP_ID}/tokens`, { refresh_token: first.refresh_token })).auth_result;

    assert.equal(await psg.user.revokeRefreshTokens(user.id), true);
    const res = await fetch(`${BASE}/v1/apps/${APP_ID}/tokens`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ refresh_token }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(res.status, 401);
  });
});
