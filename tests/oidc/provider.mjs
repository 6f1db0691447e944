// Minimal OpenID Connect provider for Keyhaven integration tests.
// Usage: OIDC_CLIENTS='[{"client_id":"..","client_secret":"..","redirect_uris":[".."]}]' node tests/oidc/provider.mjs
// Prints one JSON line {"issuer":"http://127.0.0.1:PORT"} once listening; exits when stdin closes or after 10 minutes.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

// Stop by ourselves: when the parent goes away (stdin EOF) and after 10 minutes at most.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdin.resume();
setTimeout(() => process.exit(0), 10 * 60 * 1000).unref();

// Confidential code-flow clients from the environment.
const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]').map((c) => ({
  client_id: c.client_id,
  client_secret: c.client_secret,
  redirect_uris: c.redirect_uris,
  token_endpoint_auth_method: c.token_endpoint_auth_method || 'client_secret_basic',
  grant_types: ['authorization_code'],
  response_types: ['code'],
}));

// Fresh RS256 signing key for this run.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const jwk = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };

// Any id is a valid account; ids starting with "unverified" have an unverified email.
async function findAccount(ctx, id) {
  return {
    accountId: id,
    async claims() {
      return {
        sub: id,
        email: id.includes('@') ? id : `${id}@example.test`,
        email_verified: !id.startsWith('unverified'),
        name: id,
      };
    },
  };
}

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

function send(res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(body);
}

// Grant everything the client asked for (mirrors oidc-provider's example "confirm" route).
async function autoConsent(provider, req, res, details) {
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  const consent = details.grantId ? {} : { grantId };
  await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
}

// Our own interaction routes: /interaction/:uid, /interaction/:uid/login, /interaction/:uid/confirm.
async function interactions(provider, req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'consent') return autoConsent(provider, req, res, details);
    return send(res, 200, 'text/html; charset=utf-8', `<!doctype html><title>Sign in</title>
<form method="post" action="/interaction/${escapeHtml(uid)}/login"><input name="login"><button>Sign in</button></form>`);
  }
  if (req.method === 'POST' && action === 'login') {
    const login = (await readForm(req)).get('login');
    if (!login) return send(res, 400, 'text/plain', 'missing login');
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') return autoConsent(provider, req, res, details);
  return send(res, 404, 'text/plain', 'not found');
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [jwk] },
    findAccount,
    scopes: ['openid', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  });
  const callback = provider.callback();

  server.on('request', (req, res) => {
    const m = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?(?:\?.*)?$/.exec(req.url);
    if (!m) return callback(req, res);
    interactions(provider, req, res, m[1], m[2]).catch((err) => {
      if (!res.headersSent) send(res, 400, 'text/plain', `interaction error: ${err.message}\n`);
    });
  });

  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
