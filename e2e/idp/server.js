// Local OAuth 2.0 authorization server for the end-to-end tests and the demo
// of the token introspection middleware. Built on node-oidc-provider.
//
// Environment:
//   IDP_PORT              port to listen on, on 127.0.0.1 (default 9090; 0 = pick a free one)
//   IDP_ACCESS_TOKEN_TTL  access token lifetime in seconds (default 3600)
//   IDP_RS_JWKS_FILE      JWKS (public keys) of the private_key_jwt resource server "rs-jwt";
//                         when unset, that client is not registered
//   IDP_CLIENTS_JSON      JSON array of extra client metadata objects; an entry whose client_id
//                         matches a built-in client replaces that client
//   IDP_DEBUG             when set, log every request to stderr (errors are always logged)
//   IDP_REALM             when set, the IdP takes Keycloak's shape (see "Keycloak's shape"):
//                         its issuer is <base>/realms/<realm>, its endpoints are at Keycloak's
//                         paths, and its tokens carry Keycloak's claims
//   IDP_TLS_CERT_FILE     with IDP_TLS_KEY_FILE: serve HTTPS with this certificate (PEM)
//   IDP_TLS_KEY_FILE      and this key (PEM)
//
// Once listening it prints exactly one line to stdout:
//   IDP_READY <issuer>            (http://127.0.0.1:<port>, or https://..., or .../realms/<realm>)
// Everything else goes to stderr.

import * as crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

import Provider from 'oidc-provider';

import MapAdapter from './adapter.js';

const HOST = '127.0.0.1';

// stdout carries only the IDP_READY line. oidc-provider prints its NOTICEs with
// console.info (stdout), so send console.log/info to stderr as well.
console.log = (...args) => console.error(...args);
console.info = (...args) => console.error(...args);

function log(...args) {
  console.error('[idp]', ...args);
}

function fail(message) {
  log(`error: ${message}`);
  process.exit(1);
}

function intFromEnv(name, fallback, { min = 0 } = {}) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) fail(`${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return value;
}

const port = intFromEnv('IDP_PORT', 9090);
if (port > 65535) fail('IDP_PORT must be <= 65535');
const accessTokenTTL = intFromEnv('IDP_ACCESS_TOKEN_TTL', 3600, { min: 1 });
const debug = Boolean(process.env.IDP_DEBUG);
const realm = process.env.IDP_REALM || '';
if (realm && !/^[A-Za-z0-9_-]+$/.test(realm)) fail('IDP_REALM must be letters, digits, _ and -');
const tlsCert = process.env.IDP_TLS_CERT_FILE || '';
const tlsKey = process.env.IDP_TLS_KEY_FILE || '';
if (Boolean(tlsCert) !== Boolean(tlsKey)) fail('IDP_TLS_CERT_FILE and IDP_TLS_KEY_FILE go together');

// ---------------------------------------------------------------------------
// Clients

const SCOPES = ['openid', 'api:read', 'api:write', 'admin'];

// Machine clients that obtain tokens with client_credentials.
function machineClient(clientId, clientSecret, scope, claims) {
  return {
    client_id: clientId,
    client_secret: clientSecret,
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope,
    extra_token_claims: claims,
  };
}

// Resource servers: they never obtain tokens, they only call the introspection
// endpoint. In oidc-provider 9 one client authenticates the same way at every
// endpoint (token, introspection, revocation), using token_endpoint_auth_method;
// there is no separate introspection_endpoint_auth_method.
function resourceServerClient(clientId, authMethod, extra = {}) {
  return {
    client_id: clientId,
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: authMethod,
    ...extra,
  };
}

const clients = [
  machineClient('app-admin', 'app-admin-secret', 'api:read api:write admin', {
    grp: 'admin',
    username: 'alice',
    user: { name: 'Alice Admin', status: 'active' },
    areas: ['office', 'home'],
  }),
  machineClient('app-user', 'app-user-secret', 'api:read', {
    grp: 'user',
    username: 'bob',
    user: { name: 'Bob User', status: 'active' },
    areas: ['office', 'home'],
  }),
  // Three users whose claims all differ, so that a claim forwarded under another claim's header
  // shows (the multi-router scenarios).
  ...[0, 1, 2].map((n) => machineClient(`app-team-${n}`, `app-team-${n}-secret`, 'api:read', {
    grp: 'user',
    username: `user-${n}`,
    role: `role-${n}`,
    team: `team-${n}`,
    mail: `mail-${n}@example.test`,
  })),
  resourceServerClient('rs-basic', 'client_secret_basic', { client_secret: 'rs-basic-secret' }),
  resourceServerClient('rs-post', 'client_secret_post', { client_secret: 'rs-post-secret' }),
];

if (process.env.IDP_RS_JWKS_FILE) {
  let jwks;
  try {
    jwks = JSON.parse(readFileSync(process.env.IDP_RS_JWKS_FILE, 'utf8'));
  } catch (err) {
    fail(`cannot read IDP_RS_JWKS_FILE ${process.env.IDP_RS_JWKS_FILE}: ${err.message}`);
  }
  if (!Array.isArray(jwks?.keys)) fail('IDP_RS_JWKS_FILE must hold a JWKS object: {"keys": [...]}');
  // Private parts must never be registered; keep only the public members.
  const publicOnly = jwks.keys.map((jwk) => crypto.createPublicKey({ key: jwk, format: 'jwk' })
    .export({ format: 'jwk' }))
    .map((pub, i) => ({ ...pub, ...pick(jwks.keys[i], ['kid', 'alg', 'use']) }));
  // No token_endpoint_auth_signing_alg: the provider then accepts any enabled
  // asymmetric algorithm for which the client has a key (RS256 and ES256 included).
  clients.push(resourceServerClient('rs-jwt', 'private_key_jwt', { jwks: { keys: publicOnly } }));
}

function pick(obj, keys) {
  const out = {};
  for (const k of keys) if (obj[k] !== undefined) out[k] = obj[k];
  return out;
}

if (process.env.IDP_CLIENTS_JSON) {
  let extra;
  try {
    extra = JSON.parse(process.env.IDP_CLIENTS_JSON);
  } catch (err) {
    fail(`IDP_CLIENTS_JSON is not valid JSON: ${err.message}`);
  }
  if (!Array.isArray(extra)) fail('IDP_CLIENTS_JSON must be a JSON array of client metadata objects');
  for (const c of extra) {
    if (!c || typeof c.client_id !== 'string') fail('every IDP_CLIENTS_JSON entry needs a string client_id');
    const i = clients.findIndex((existing) => existing.client_id === c.client_id);
    if (i === -1) clients.push(c);
    else clients[i] = c;
  }
}

// ---------------------------------------------------------------------------
// Keycloak's shape (IDP_REALM): the endpoints at Keycloak's paths under /realms/<realm>, the
// client "example" (secret "example") of the Hub page's Basic header as a resource server, and
// Keycloak's claims on every machine client's tokens: realm_access.roles,
// resource_access.<client>.roles, preferred_username, azp, and aud as an array (app-admin) or a
// string (the others).

const KEYCLOAK_ROUTES = {
  token: '/protocol/openid-connect/token',
  introspection: '/protocol/openid-connect/token/introspect',
  revocation: '/protocol/openid-connect/revoke',
  jwks: '/protocol/openid-connect/certs',
  userinfo: '/protocol/openid-connect/userinfo',
};

function keycloakClaims(clientId, claims) {
  const admin = claims.grp === 'admin';
  return {
    ...claims,
    username: `service-account-${clientId}`,
    preferred_username: `service-account-${clientId}`,
    azp: clientId,
    typ: 'Bearer',
    realm_access: { roles: admin ? ['admin', 'offline_access', `default-roles-${realm}`] : ['offline_access', `default-roles-${realm}`] },
    resource_access: {
      'orders-api': { roles: admin ? ['orders:read', 'orders:write'] : ['orders:read'] },
      account: { roles: ['view-profile'] },
    },
    // aud is set by the introspection hook below: node-oidc-provider writes its own aud over
    // the token's extra claims.
    kc_aud: admin ? ['orders-api', 'account'] : 'orders-api',
  };
}

if (realm) {
  for (const c of clients) {
    if (c.extra_token_claims) c.extra_token_claims = keycloakClaims(c.client_id, c.extra_token_claims);
  }
  clients.push(resourceServerClient('example', 'client_secret_basic', { client_secret: 'example' }));
}

// ---------------------------------------------------------------------------
// Custom claims, stored with each client_credentials token and returned by introspection.

function claimsFor(client) {
  const configured = client?.extra_token_claims;
  if (configured) return structuredClone(configured);
  const id = client?.clientId ?? 'unknown';
  return {
    grp: 'user',
    username: id,
    user: { name: id, status: 'active' },
    areas: ['office', 'home'],
  };
}

// ---------------------------------------------------------------------------
// Provider configuration

function ephemeralSigningKey() {
  // Opaque access tokens need no signing key, but the provider always wants one
  // (ID tokens, discovery). A fresh key per start avoids the "development keys" warning.
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' };
}

function configuration() {
  return {
    adapter: MapAdapter,
    clients,
    scopes: SCOPES,
    jwks: { keys: [ephemeralSigningKey()] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    extraClientMetadata: {
      // Lets a client (built in or from IDP_CLIENTS_JSON) define its own custom token claims.
      properties: ['extra_token_claims'],
      validator(ctx, key, value) {
        if (key === 'extra_token_claims' && value !== undefined
          && (value === null || typeof value !== 'object' || Array.isArray(value))) {
          throw new Error('extra_token_claims must be a JSON object');
        }
      },
    },
    ttl: {
      AccessToken: accessTokenTTL,
      ClientCredentials: accessTokenTTL,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Any authenticated confidential client (the resource servers) may
        // introspect any token, including tokens issued to other clients.
        // Public clients (auth method "none") only their own tokens.
        allowedPolicy(ctx, client, token) {
          if (client.clientAuthMethod === 'none' && token.clientId !== client.clientId) return false;
          return true;
        },
      },
      revocation: {
        enabled: true,
        // A client may revoke only the tokens issued to it.
        allowedPolicy(ctx, client, token) {
          return token.clientId === client.clientId;
        },
      },
      resourceIndicators: {
        enabled: true,
        // No resource parameter -> no resource server -> an opaque token without aud.
        defaultResource: () => undefined,
        useGrantedResource: () => false,
        // With resource=<absolute URI> the token gets aud=<that URI>, and stays
        // opaque (a JWT access token could not be introspected here).
        getResourceServerInfo: (ctx, resourceIndicator) => ({
          scope: SCOPES.filter((s) => s !== 'openid').join(' '),
          audience: resourceIndicator,
          accessTokenFormat: 'opaque',
          accessTokenTTL,
        }),
      },
    },
    ...(realm ? { routes: KEYCLOAK_ROUTES } : {}),
    async extraTokenClaims(ctx, token) {
      if (token.kind !== 'ClientCredentials') return undefined;
      const client = ctx?.oidc?.client ?? await provider.Client.find(token.clientId);
      return claimsFor(client);
    },
  };
}

// ---------------------------------------------------------------------------
// Server

let provider;
let handler = (req, res) => {
  res.statusCode = 503;
  res.end('starting\n');
};
// With IDP_REALM every path is under /realms/<realm>, as in Keycloak: the prefix is taken off
// before the provider sees the request (its issuer has it), and anything else is a 404.
const prefix = realm ? `/realms/${realm}` : '';
function route(req, res) {
  if (prefix) {
    if (req.url !== prefix && !req.url.startsWith(`${prefix}/`) && !req.url.startsWith(`${prefix}?`)) {
      res.statusCode = 404;
      res.end('not found\n');
      return;
    }
    // As when it is mounted in an app: the provider takes its mount path from originalUrl.
    req.originalUrl = req.url;
    req.url = req.url.slice(prefix.length) || '/';
  }
  handler(req, res);
}
const server = tlsCert
  ? https.createServer({ cert: readFileSync(tlsCert), key: readFileSync(tlsKey) }, route)
  : http.createServer(route);
server.keepAliveTimeout = 65_000;

server.on('error', (err) => fail(`cannot listen on ${HOST}:${port}: ${err.message}`));

server.listen(port, HOST, () => {
  const actualPort = server.address().port;
  const issuer = `${tlsCert ? 'https' : 'http'}://${HOST}:${actualPort}${prefix}`;
  try {
    provider = new Provider(issuer, configuration());
  } catch (err) {
    fail(`invalid provider configuration: ${err.stack || err.message}`);
  }

  provider.on('server_error', (ctx, err) => log('server_error', ctx.method, ctx.path, err.stack || err));
  // Client errors: one line each on stderr, with the detail the HTTP response hides
  // (e.g. why a client assertion was refused).
  for (const event of ['grant.error', 'introspection.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => {
      const detail = err.error_detail || err.cause?.message;
      log(event, ctx.oidc?.client?.clientId ?? '-', err.message, err.error_description ?? '', detail ? `(${detail})` : '');
    });
  }
  if (debug) {
    provider.use(async (ctx, next) => {
      const start = Date.now();
      await next();
      log(ctx.method, ctx.path, ctx.status, `${Date.now() - start}ms`);
    });
  }

  if (realm) {
    // Keycloak's aud: a string or an array, as the client's claims say.
    provider.use(async (ctx, next) => {
      await next();
      const body = ctx.body;
      if (ctx.path === KEYCLOAK_ROUTES.introspection && body && typeof body === 'object' && 'kc_aud' in body) {
        if (body.active) {
          body.aud = body.kc_aud;
          // Keycloak's default client scopes, on a token asked for without a scope.
          body.scope ??= 'profile email';
        }
        delete body.kc_aud;
      }
    });
  }
  handler = provider.callback();
  process.stdout.write(`IDP_READY ${issuer}\n`);
});

let stopping = false;
function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log(`${signal} received, shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
