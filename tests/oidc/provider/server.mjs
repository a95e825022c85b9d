// The OpenID provider the test suite signs in against: `oidc-provider` configured like the Keycloak realm `itdo`.
//
// Started by the `oidc_provider` pytest fixture (tests/oidc/conftest.py) with the path of a JSON configuration file in
// OIDC_TEST_CONFIG: {"clients": [...], "jwks": {"keys": [private JWKs]}, "accounts": [...], "audience": "...",
// "resource": "...", "realm": "itdo", "port": 0}. It listens on 127.0.0.1 only and prints one line
// `READY <port> <issuer>` once discovery answers.
//
// Like Keycloak: the issuer is `http://127.0.0.1:<port>/realms/itdo`, endpoints sit under `protocol/openid-connect/`,
// access tokens are JWTs for the API audience carrying `azp`, `typ: "Bearer"`, `realm_access.roles` and `groups`; ID
// tokens and userinfo carry the profile, email, groups and realm roles; refresh tokens are issued in the code flow and
// end with the provider session; RP-initiated logout takes `id_token_hint` and `post_logout_redirect_uri`.
//
// Test-only endpoints (outside the issuer path):
//   POST /test/accounts  {sub, username, email, email_verified, name, groups, roles, password}  upsert an account
//   POST /test/keys      {keys: [private JWKs]}  replace the signing keys (the first key of an algorithm signs)
//   GET  /test/events    what happened: sign-ins, logouts, token grants (newest last)
//   POST /test/events/clear
import * as http from 'node:http';
import { readFileSync } from 'node:fs';
import * as querystring from 'node:querystring';

import Provider from 'oidc-provider';
import * as jose from 'jose';

const config = JSON.parse(readFileSync(process.env.OIDC_TEST_CONFIG, 'utf8'));
const realmPath = `/realms/${config.realm || 'itdo'}`;
const resourceIndicator = config.resource || 'urn:itdo:erp-api';
const audience = config.audience || 'itdo-erp-api';

const accounts = new Map();
const events = [];
let signingKeys = config.jwks;

function record(kind, details) {
  events.push({ kind, at: Date.now() / 1000, ...details });
}

function upsertAccount(input) {
  if (!input.sub) throw new Error('an account needs a sub');
  const previous = accounts.get(input.sub) || {};
  const account = { ...previous, ...input };
  account.username = account.username || account.email || account.sub;
  account.groups = account.groups || [];
  account.roles = account.roles || [];
  accounts.set(account.sub, account);
  return account;
}

(config.accounts || []).forEach(upsertAccount);

function accountByLogin(login) {
  const wanted = String(login || '').toLowerCase();
  for (const account of accounts.values()) {
    if (account.username.toLowerCase() === wanted || (account.email || '').toLowerCase() === wanted) {
      return account;
    }
  }
  return undefined;
}

// The claims Keycloak's default client scopes put in ID tokens, userinfo and access tokens.
function profileClaims(account) {
  const [givenName, ...rest] = (account.name || '').split(' ');
  return {
    sub: account.sub,
    email: account.email,
    email_verified: Boolean(account.email_verified),
    name: account.name,
    given_name: givenName || undefined,
    family_name: rest.join(' ') || undefined,
    preferred_username: account.username,
    groups: account.groups,
    realm_access: { roles: account.roles },
  };
}

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;
}

function loginPage(uid, error) {
  return page('Sign in to itdo', `
    <h1>Sign in to itdo</h1>
    ${error ? `<p id="error">${escapeHtml(error)}</p>` : ''}
    <form id="kc-form-login" method="post" action="${realmPath}/interaction/${uid}/login">
      <input name="username" autofocus><input name="password" type="password">
      <button type="submit">Sign in</button>
    </form>`);
}

function buildProvider(issuer) {
  const provider = new Provider(issuer, {
    clients: config.clients,
    jwks: signingKeys,
    cookies: { keys: ['test-provider-cookie-key-0123456789'] },
    routes: {
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      userinfo: '/protocol/openid-connect/userinfo',
      jwks: '/protocol/openid-connect/certs',
      end_session: '/protocol/openid-connect/logout',
      revocation: '/protocol/openid-connect/revoke',
      introspection: '/protocol/openid-connect/token/introspect',
    },
    responseTypes: ['code'],
    scopes: ['openid', 'offline_access', 'email', 'profile'],
    claims: {
      // Keycloak's default "roles" scope and a group membership mapper add these whatever the requested scopes.
      openid: ['sub', 'groups', 'realm_access'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    },
    // Keycloak puts the profile claims in the ID token even when an access token is issued alongside.
    conformIdTokenClaims: false,
    pkce: { methods: ['S256'], required: () => true },
    clientBasedCORS: () => false,
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      IdToken: 300,
      Interaction: 600,
      Session: 3600,
      Grant: 3600,
      RefreshToken: 1800,
    },
    // Keycloak issues a refresh token in every code flow (bound to the SSO session unless offline_access).
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // Keycloak asks nothing when the id_token_hint is valid; a test submits this form like a browser would.
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out', form.replace('</form>', '<input type="hidden" name="logout" value="yes"></form>'));
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<p id="signed-out">You are signed out.</p>');
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resourceIndicator,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, indicator) => {
          if (indicator !== resourceIndicator) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'openid email profile offline_access',
            audience,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    interactions: { url: (ctx, interaction) => `${realmPath}/interaction/${interaction.uid}` },
    // The ERP is a first-party client: consent is implied, as with Keycloak's "consent required: off".
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        const existing = await ctx.oidc.provider.Grant.find(grantId);
        if (existing) return existing;
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile offline_access');
      grant.addResourceScope(resourceIndicator, 'openid email profile offline_access');
      await grant.save();
      return grant;
    },
    findAccount: async (ctx, sub) => {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => profileClaims(accounts.get(sub) || account) };
    },
    extraTokenClaims: async (ctx, token) => {
      const account = accounts.get(token.accountId);
      const claims = { azp: token.clientId, typ: 'Bearer' };
      return account ? { ...claims, ...profileClaims(account), sub: undefined } : claims;
    },
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = page('Error', `<pre id="error">${escapeHtml(JSON.stringify(out))}</pre>`);
    },
  });
  provider.proxy = false;
  provider.on('grant.success', (ctx) => record('grant', { client_id: ctx.oidc.client?.clientId, grant_type: ctx.oidc.params?.grant_type }));
  provider.on('end_session.success', (ctx) => record('logout', { sub: ctx.oidc.session?.accountId, client_id: ctx.oidc.client?.clientId }));
  provider.on('server_error', (ctx, error) => console.error('server_error', error));
  return provider;
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body, type = 'application/json') {
  res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store' });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

// Keycloak's userinfo endpoint accepts the realm's own JWT access tokens, whatever their audience; oidc-provider does
// not store JWT access tokens, so this answers with the account's current claims after verifying the token locally.
async function userinfo(req, res, issuer) {
  const header = req.headers.authorization || '';
  let token = header.startsWith('Bearer ') ? header.slice(7) : '';
  if (!token && req.method === 'POST') token = querystring.parse(await readBody(req)).access_token || '';
  try {
    const publicKeys = jose.createLocalJWKSet({ keys: signingKeys.keys.map(publicJwk) });
    const { payload } = await jose.jwtVerify(token, publicKeys, { issuer, typ: 'at+jwt' });
    const account = accounts.get(payload.sub);
    if (!account) throw new Error('unknown account');
    return send(res, 200, profileClaims(account));
  } catch (error) {
    res.setHeader('WWW-Authenticate', `Bearer error="invalid_token", error_description="${error.message}"`);
    return send(res, 401, { error: 'invalid_token', error_description: error.message });
  }
}

function publicJwk(jwk) {
  const { d, p, q, dp, dq, qi, ...rest } = jwk;
  return rest;
}

async function testEndpoint(req, res, rebuild) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'POST' && url.pathname === '/test/accounts') {
    return send(res, 200, upsertAccount(JSON.parse(await readBody(req))));
  }
  if (req.method === 'POST' && url.pathname === '/test/keys') {
    signingKeys = JSON.parse(await readBody(req));
    rebuild();
    return send(res, 200, { kids: signingKeys.keys.map((key) => key.kid) });
  }
  if (req.method === 'GET' && url.pathname === '/test/events') return send(res, 200, events);
  if (req.method === 'POST' && url.pathname === '/test/events/clear') {
    events.length = 0;
    return send(res, 200, {});
  }
  return send(res, 404, { error: 'not_found' });
}

async function interaction(req, res, provider, path) {
  const [, uid, action] = path.match(/^\/interaction\/([^/]+)(?:\/(login))?$/) || [];
  if (!uid) return send(res, 404, { error: 'not_found' });
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, { error: 'interaction mismatch' });
  if (details.prompt.name === 'consent') {
    // Asked for explicitly (prompt=consent): granted at once, as for a first-party client.
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details;
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes || {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (req.method === 'GET' && !action) return send(res, 200, loginPage(uid), 'text/html; charset=utf-8');
  if (req.method === 'POST' && action === 'login') {
    const form = querystring.parse(await readBody(req));
    const account = accountByLogin(form.username);
    if (!account || account.password === undefined || account.password !== form.password) {
      record('login_failed', { username: form.username });
      return send(res, 200, loginPage(uid, 'Invalid username or password.'), 'text/html; charset=utf-8');
    }
    record('login', { sub: account.sub });
    return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, { error: 'method_not_allowed' });
}

const server = http.createServer();
server.listen(Number(config.port || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}${realmPath}`;
  let provider = buildProvider(issuer);
  let callback = provider.callback();
  const rebuild = () => {
    provider = buildProvider(issuer);
    callback = provider.callback();
  };

  server.on('request', async (req, res) => {
    try {
      const path = new URL(req.url, 'http://127.0.0.1').pathname;
      if (path.startsWith('/test/')) return await testEndpoint(req, res, rebuild);
      if (!path.startsWith(`${realmPath}/`)) return send(res, 404, { error: 'not_found' });
      const inner = path.slice(realmPath.length);
      if (inner.startsWith('/interaction/')) return await interaction(req, res, provider, inner);
      if (inner === '/protocol/openid-connect/userinfo') return await userinfo(req, res, issuer);
      // Mounted under the realm path: oidc-provider works out its mount point from originalUrl.
      req.originalUrl = req.url;
      req.url = req.url.slice(realmPath.length);
      return callback(req, res);
    } catch (error) {
      console.error(error);
      if (!res.headersSent) send(res, 500, { error: 'server_error', error_description: String(error.message) });
      return undefined;
    }
  });
  process.stdout.write(`READY ${port} ${issuer}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
