// Smoke tests of the e2e identity provider: `npm test` (node's built-in test runner).
// Each server is started on a free port (IDP_PORT=0) and stopped with SIGTERM.

import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import {
  mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const SERVER = new URL('./server.js', import.meta.url).pathname;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// ATTEMPT_MS bounds how long one start may take to print IDP_READY; ATTEMPTS is how many starts
// startIdp makes. A start that hangs (seen a few times in CI: node-oidc-provider's process asleep
// before it listens) is killed, its threads' states logged, and the server started again, as the
// e2e harness does (e2e/harness_test.go).
const ATTEMPT_MS = 20000;
const ATTEMPTS = 3;

// threads describes a process's threads from /proc: name, state, CPU ticks, and the kernel
// function each one waits in, for the log line of a start that hung.
function threads(pid) {
  try {
    return readdirSync(`/proc/${pid}/task`).map((tid) => {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      let wchan = '';
      try { wchan = readFileSync(`/proc/${pid}/task/${tid}/wchan`, 'utf8'); } catch { /* not readable */ }
      return `${tid} ${fields[0]} cpu=${fields[11]}+${fields[12]} wchan=${wchan}`;
    }).join('; ');
  } catch (err) {
    return `unreadable: ${err.message}`;
  }
}

function startIdp(env = {}) {
  let child;
  let stdout = '';
  let stderr = '';
  const startOnce = () => new Promise((resolve, reject) => {
    stdout = '';
    stderr = '';
    child = spawn(process.execPath, [SERVER], {
      env: { ...process.env, IDP_PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const timer = setTimeout(() => reject(Object.assign(new Error('no IDP_READY'), { hung: true })), ATTEMPT_MS);
    child.stderr.on('data', (c) => { stderr += c; });
    child.stdout.on('data', (c) => {
      stdout += c;
      const m = /^IDP_READY (https?:\/\/127\.0\.0\.1:\d+(?:\/realms\/[\w-]+)?)\n/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`idp exited early (${code}): ${stderr}`));
    });
  });
  const ready = (async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await startOnce();
      } catch (err) {
        if (!err.hung || attempt === ATTEMPTS) throw err;
        const hung = child;
        console.error(`the IdP printed no IDP_READY in ${ATTEMPT_MS} ms (attempt ${attempt} of ${ATTEMPTS});`
          + ` its threads: ${threads(hung.pid)}; stderr: ${stderr}; starting it again`);
        await new Promise((resolve) => { hung.on('exit', resolve); hung.kill('SIGKILL'); });
      }
    }
  })();
  const stop = () => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve(child.exitCode);
    child.on('exit', (code, signal) => resolve(code ?? signal));
    child.kill('SIGTERM');
  });
  return { ready, stop, output: () => ({ stdout, stderr }) };
}

function basic(id, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function post(url, params, headers = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(params),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: text ? JSON.parse(text) : undefined };
}

function clientAssertion(privateKey, alg, kid, aud, { iss = 'rs-jwt', expIn = 60 } = {}) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg, typ: 'JWT', kid })}.${b64({
    iss, sub: iss, aud, iat: now, exp: now + expIn, jti: crypto.randomUUID(),
  })}`;
  const key = alg.startsWith('ES') ? { key: privateKey, dsaEncoding: 'ieee-p1363' } : privateKey;
  return `${input}.${crypto.sign('sha256', Buffer.from(input), key).toString('base64url')}`;
}

const ADMIN_CLAIMS = {
  grp: 'admin',
  username: 'alice',
  user: { name: 'Alice Admin', status: 'active' },
  areas: ['office', 'home'],
};

describe('e2e idp', () => {
  let idp;
  let issuer;
  let dir;
  let rsa;
  let ec;
  let meta;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'idp-test-'));
    rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwks = {
      keys: [
        { ...rsa.publicKey.export({ format: 'jwk' }), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
        { ...ec.publicKey.export({ format: 'jwk' }), kid: 'ec-1', alg: 'ES256', use: 'sig' },
      ],
    };
    const jwksFile = join(dir, 'rs-jwt.jwks.json');
    writeFileSync(jwksFile, JSON.stringify(jwks));
    idp = startIdp({
      IDP_RS_JWKS_FILE: jwksFile,
      IDP_CLIENTS_JSON: JSON.stringify([{
        client_id: 'app-extra',
        client_secret: 'app-extra-secret',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: 'api:read',
        extra_token_claims: { grp: 'ops', username: 'carol' },
      }]),
    });
    issuer = await idp.ready;
    meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
  });

  after(async () => {
    const code = await idp?.stop();
    rmSync(dir, { recursive: true, force: true });
    assert.equal(code, 0, 'exits 0 on SIGTERM');
    assert.match(idp.output().stdout, /^IDP_READY http:\/\/127\.0\.0\.1:\d+\n$/, 'stdout is exactly one line');
  });

  async function token(id, secret, scope) {
    const res = await post(meta.token_endpoint, { grant_type: 'client_credentials', ...(scope && { scope }) }, {
      authorization: basic(id, secret),
    });
    assert.equal(res.status, 200, res.text);
    return res.json;
  }

  it('publishes the expected endpoints', () => {
    assert.equal(meta.issuer, issuer);
    assert.equal(meta.token_endpoint, `${issuer}/token`);
    assert.equal(meta.introspection_endpoint, `${issuer}/token/introspection`);
    assert.equal(meta.revocation_endpoint, `${issuer}/token/revocation`);
    for (const s of ['api:read', 'api:write', 'admin']) assert.ok(meta.scopes_supported.includes(s));
  });

  it('issues opaque tokens that rs-basic and rs-post introspect with the custom claims', async () => {
    const t = await token('app-admin', 'app-admin-secret', 'api:read api:write admin');
    assert.equal(t.token_type, 'Bearer');
    assert.equal(t.scope, 'api:read api:write admin');
    assert.equal(t.access_token.split('.').length, 1, 'opaque, not a JWT');

    const viaBasic = await post(meta.introspection_endpoint, { token: t.access_token }, {
      authorization: basic('rs-basic', 'rs-basic-secret'),
    });
    assert.equal(viaBasic.status, 200);
    assert.deepEqual({ ...viaBasic.json, exp: undefined, iat: undefined }, {
      active: true,
      ...ADMIN_CLAIMS,
      client_id: 'app-admin',
      exp: undefined,
      iat: undefined,
      iss: issuer,
      scope: 'api:read api:write admin',
      token_type: 'Bearer',
    });
    assert.equal(viaBasic.json.exp - viaBasic.json.iat, 3600);

    const viaPost = await post(meta.introspection_endpoint, {
      token: t.access_token, client_id: 'rs-post', client_secret: 'rs-post-secret',
    });
    assert.equal(viaPost.status, 200);
    assert.deepEqual(viaPost.json, viaBasic.json);
  });

  it('gives app-user its own claims and only api:read', async () => {
    const t = await token('app-user', 'app-user-secret', 'api:read');
    const res = await post(meta.introspection_endpoint, { token: t.access_token }, {
      authorization: basic('rs-basic', 'rs-basic-secret'),
    });
    assert.equal(res.json.active, true);
    assert.equal(res.json.grp, 'user');
    assert.equal(res.json.username, 'bob');
    assert.deepEqual(res.json.user, { name: 'Bob User', status: 'active' });
    assert.deepEqual(res.json.areas, ['office', 'home']);

    const denied = await post(meta.token_endpoint, { grant_type: 'client_credentials', scope: 'admin' }, {
      authorization: basic('app-user', 'app-user-secret'),
    });
    assert.equal(denied.status, 400);
    assert.equal(denied.json.error, 'invalid_scope');
  });

  it('takes extra clients and their claims from IDP_CLIENTS_JSON', async () => {
    const t = await token('app-extra', 'app-extra-secret', 'api:read');
    const res = await post(meta.introspection_endpoint, { token: t.access_token }, {
      authorization: basic('rs-basic', 'rs-basic-secret'),
    });
    assert.equal(res.json.grp, 'ops');
    assert.equal(res.json.username, 'carol');
  });

  it('puts aud on the token when a resource indicator is sent, and keeps it opaque', async () => {
    const res = await post(meta.token_endpoint, {
      grant_type: 'client_credentials', scope: 'api:read', resource: 'https://api.example.test/',
    }, { authorization: basic('app-admin', 'app-admin-secret') });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.access_token.split('.').length, 1);
    const i = await post(meta.introspection_endpoint, { token: res.json.access_token }, {
      authorization: basic('rs-basic', 'rs-basic-secret'),
    });
    assert.equal(i.json.active, true);
    assert.equal(i.json.aud, 'https://api.example.test/');
  });

  it('refuses introspection without client authentication (400) or with a wrong secret (401)', async () => {
    const t = await token('app-admin', 'app-admin-secret', 'api:read');

    const none = await post(meta.introspection_endpoint, { token: t.access_token });
    assert.equal(none.status, 400);
    assert.deepEqual(none.json, {
      error: 'invalid_request', error_description: 'no client authentication mechanism provided',
    });

    const wrongBasic = await post(meta.introspection_endpoint, { token: t.access_token }, {
      authorization: basic('rs-basic', 'wrong'),
    });
    assert.equal(wrongBasic.status, 401);
    assert.deepEqual(wrongBasic.json, { error: 'invalid_client', error_description: 'client authentication failed' });
    assert.match(wrongBasic.headers.get('www-authenticate'), /^Basic realm=/);

    const wrongPost = await post(meta.introspection_endpoint, {
      token: t.access_token, client_id: 'rs-post', client_secret: 'wrong',
    });
    assert.equal(wrongPost.status, 401);
    assert.deepEqual(wrongPost.json, { error: 'invalid_client', error_description: 'client authentication failed' });
  });

  it('answers active:false for unknown tokens', async () => {
    const res = await post(meta.introspection_endpoint, { token: 'no-such-token' }, {
      authorization: basic('rs-basic', 'rs-basic-secret'),
    });
    assert.equal(res.status, 200);
    assert.deepEqual(res.json, { active: false });
  });

  it('lets app-admin revoke its own token, and nobody else', async () => {
    const t = await token('app-admin', 'app-admin-secret', 'api:read');
    const introspect = async () => (await post(meta.introspection_endpoint, { token: t.access_token }, {
      authorization: basic('rs-basic', 'rs-basic-secret'),
    })).json.active;

    // Another client's revocation request is answered 200 but ignored (RFC 7009).
    const other = await post(meta.revocation_endpoint, { token: t.access_token }, {
      authorization: basic('app-user', 'app-user-secret'),
    });
    assert.equal(other.status, 200);
    assert.equal(await introspect(), true);

    const own = await post(meta.revocation_endpoint, { token: t.access_token, token_type_hint: 'access_token' }, {
      authorization: basic('app-admin', 'app-admin-secret'),
    });
    assert.equal(own.status, 200);
    assert.equal(own.text, '');
    assert.equal(await introspect(), false);
  });

  it('authenticates rs-jwt with private_key_jwt (RS256 and ES256)', async () => {
    const t = await token('app-admin', 'app-admin-secret', 'api:read');
    const introspect = (assertion) => post(meta.introspection_endpoint, {
      token: t.access_token, client_assertion_type: ASSERTION_TYPE, client_assertion: assertion,
    });

    for (const [key, alg, kid] of [[rsa.privateKey, 'RS256', 'rsa-1'], [ec.privateKey, 'ES256', 'ec-1']]) {
      // Accepted audiences: the issuer, the token endpoint, the introspection endpoint itself.
      for (const aud of [issuer, meta.token_endpoint, meta.introspection_endpoint, [issuer, 'other']]) {
        const res = await introspect(clientAssertion(key, alg, kid, aud));
        assert.equal(res.status, 200, `${alg} aud=${aud}: ${res.text}`);
        assert.equal(res.json.active, true);
        assert.equal(res.json.grp, 'admin');
      }
      // Refused: another endpoint, a trailing slash, another host name.
      for (const aud of [meta.revocation_endpoint, `${issuer}/`, issuer.replace('127.0.0.1', 'localhost')]) {
        const res = await introspect(clientAssertion(key, alg, kid, aud));
        assert.equal(res.status, 401, `${alg} aud=${aud} should be refused`);
      }
    }

    const once = clientAssertion(rsa.privateKey, 'RS256', 'rsa-1', issuer);
    assert.equal((await introspect(once)).status, 200);
    assert.equal((await introspect(once)).status, 401, 'a jti may be used only once');

    const expired = clientAssertion(rsa.privateKey, 'RS256', 'rsa-1', issuer, { expIn: -120 });
    assert.equal((await introspect(expired)).status, 401);
  });
});

describe('e2e idp token lifetime', () => {
  it('honours IDP_ACCESS_TOKEN_TTL', async () => {
    // A TTL of 3 s: a 1 s token issued just before a second boundary can expire at once.
    const idp = startIdp({ IDP_ACCESS_TOKEN_TTL: '3' });
    try {
      const issuer = await idp.ready;
      const t = await post(`${issuer}/token`, { grant_type: 'client_credentials', scope: 'api:read' }, {
        authorization: basic('app-user', 'app-user-secret'),
      });
      const issuedAt = Date.now();
      assert.equal(t.json.expires_in, 3);
      const introspect = async () => (await post(`${issuer}/token/introspection`, { token: t.json.access_token }, {
        authorization: basic('rs-basic', 'rs-basic-secret'),
      })).json.active;
      assert.equal(await introspect(), true);
      // Poll with a deadline until the token turns inactive; it must not before about 2 s.
      const deadline = issuedAt + 15000;
      while (await introspect()) {
        assert.ok(Date.now() < deadline, 'the token was still active 15 s after it was issued');
        await new Promise((r) => { setTimeout(r, 100); });
      }
      assert.ok(Date.now() - issuedAt >= 1900, `inactive after ${Date.now() - issuedAt} ms, before its TTL`);
    } finally {
      assert.equal(await idp.stop(), 0);
    }
  });
});

describe('e2e idp in Keycloak\'s shape (IDP_REALM)', () => {
  let idp;
  let issuer;

  before(async () => {
    idp = startIdp({ IDP_REALM: 'demo' });
    issuer = await idp.ready;
  });
  after(async () => { await idp.stop(); });

  it('serves under /realms/<realm>, at Keycloak\'s paths', async () => {
    assert.match(issuer, /\/realms\/demo$/);
    const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    assert.equal(meta.issuer, issuer);
    assert.equal(meta.token_endpoint, `${issuer}/protocol/openid-connect/token`);
    assert.equal(meta.introspection_endpoint, `${issuer}/protocol/openid-connect/token/introspect`);
    const outside = await fetch(`${new URL(issuer).origin}/.well-known/openid-configuration`);
    assert.equal(outside.status, 404);
  });

  async function introspect(clientId, secret) {
    // As the Hub page's curl: client_credentials with the secret in the form.
    const tok = await post(`${issuer}/protocol/openid-connect/token`, {
      grant_type: 'client_credentials', client_id: clientId, client_secret: secret,
    });
    assert.equal(tok.status, 200, tok.text);
    const res = await post(`${issuer}/protocol/openid-connect/token/introspect`, {
      token: tok.json.access_token, token_type_hint: 'access_token',
    }, { authorization: 'Basic ZXhhbXBsZTpleGFtcGxl' });
    assert.equal(res.status, 200, res.text);
    return res.json;
  }

  it('answers with Keycloak\'s claims, aud as an array or a string', async () => {
    const admin = await introspect('app-admin', 'app-admin-secret');
    assert.equal(admin.active, true);
    assert.equal(admin.grp, 'admin');
    assert.equal(admin.azp, 'app-admin');
    assert.equal(admin.preferred_username, 'service-account-app-admin');
    assert.equal(admin.scope, 'profile email');
    assert.deepEqual(admin.aud, ['orders-api', 'account']);
    assert.ok(admin.realm_access.roles.includes('admin'));
    assert.deepEqual(admin.resource_access['orders-api'].roles, ['orders:read', 'orders:write']);
    assert.equal(admin.kc_aud, undefined);

    const user = await introspect('app-user', 'app-user-secret');
    assert.equal(user.aud, 'orders-api');
    assert.ok(!user.realm_access.roles.includes('admin'));
    assert.deepEqual(user.resource_access['orders-api'].roles, ['orders:read']);
  });
});
