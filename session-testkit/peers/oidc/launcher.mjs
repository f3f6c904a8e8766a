// A Microsoft Entra ID stand-in for tests: panva's `oidc-provider` (9.x)
// with Entra-shaped routes for ONE tenant, on 127.0.0.1. Started by
// `session_testkit::peers::oidc::OidcProvider`; see the project's Azure reference,
// section 4.1, for why each option is set the way it is.
//
// Usage: node launcher.mjs CONFIG.json
//
// CONFIG.json (every key optional; defaults below):
//   { "nodeModules": "...",        // where `oidc-provider` is installed
//                                   //   (else $SESSION_PEERS_NODE_MODULES)
//     "port": 0,                    // 0 = a free port
//     "tenant": "...",              // a GUID or domain ([A-Za-z0-9.-])
//     "resource": "https://management.azure.com",
//     "confidentialClient": { "id": "...", "secret": "..." },
//     "publicClient": { "id": "..." },
//     "ttl": { "DeviceCode": 600, "AccessToken": 3600,
//              "ClientCredentials": 3600, "RefreshToken": 86400 },
//     "cleanupDir": "..." }          // a folder to delete when stdin closes
//
// Prints `LISTENING <port>` on stdout once it serves, and exits as soon as
// its stdin reaches EOF: the test process holds the only write end, so a
// killed test leaves no orphan server behind.

import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const config = process.argv[2] ? JSON.parse(readFileSync(process.argv[2], 'utf8')) : {};
const tenant = config.tenant ?? '5e5510a0-7e57-4000-8000-00000000a2e1';
if (!/^[A-Za-z0-9.-]+$/.test(tenant)) throw new Error(`bad tenant ${tenant}`);
const resource = config.resource ?? 'https://management.azure.com';
const confidential = { id: 'confidential-client', secret: 'confidential-secret', ...config.confidentialClient };
const publicClient = { id: 'public-client', ...config.publicClient };
// A stable GUID-shaped object id for a login.
const objectId = (login) => {
  const h = createHash('sha256').update(`oid:${login}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
};
const ttl = { DeviceCode: 600, AccessToken: 3600, ClientCredentials: 3600, RefreshToken: 86400, ...config.ttl };

// Watchdog: stdin closed (test ended or was killed) => clean up and exit.
const quit = () => {
  if (config.cleanupDir) rmSync(config.cleanupDir, { recursive: true, force: true });
  process.exit(0);
};
process.stdin.on('end', quit);
process.stdin.on('error', quit);
process.stdin.resume();

// ESM ignores NODE_PATH, so resolve the package from the peers' node_modules.
const nodeModules = config.nodeModules ?? process.env.SESSION_PEERS_NODE_MODULES;
if (!nodeModules) throw new Error('no nodeModules in the config and no $SESSION_PEERS_NODE_MODULES');
const entry = createRequire(join(nodeModules, 'noop.js')).resolve('oidc-provider');
const { default: Provider } = await import(pathToFileURL(entry).href);

// Bind first: the issuer has to carry the port the kernel picked.
const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(config.port ?? 0, '127.0.0.1', resolve);
});
const { port } = server.address();
const t = `/${tenant}`;
// Entra clients ask for `<resource>/.default`; the short forms are accepted too.
const RESOURCE_SCOPES = `${resource}/.default .default user_impersonation`;

const provider = new Provider(`http://127.0.0.1:${port}${t}/v2.0`, {
  routes: {
    token: `${t}/oauth2/v2.0/token`,
    device_authorization: `${t}/oauth2/v2.0/devicecode`,
    code_verification: `${t}/device`,
    jwks: `${t}/discovery/v2.0/keys`,
    authorization: `${t}/oauth2/v2.0/authorize`,
  },
  clients: [
    {
      client_id: confidential.id,
      client_secret: confidential.secret,
      grant_types: ['client_credentials', 'refresh_token'],
      redirect_uris: [],
      response_types: [],
    },
    {
      client_id: publicClient.id,
      token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
      redirect_uris: [],
      response_types: [],
    },
  ],
  scopes: ['openid', 'offline_access', 'profile'],
  // Entra's ID token names the tenant (`tid`), the user's object id (`oid`)
  // and the sign-in name (`preferred_username`); with conform mode off they
  // are in the ID token the token endpoint returns, as on Entra.
  claims: { openid: ['sub', 'tid', 'oid'], profile: ['preferred_username', 'name'] },
  conformIdTokenClaims: false,
  features: {
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    devInteractions: { enabled: true }, // login pages that accept any login and password
    resourceIndicators: {
      enabled: true,
      // Entra clients send no `resource`; every token is for `resource`.
      defaultResource: () => resource,
      useGrantedResource: () => true,
      // Accepts `<resource>/.default`; access tokens are JWTs with aud = resource.
      getResourceServerInfo: (_ctx, indicator) => ({
        scope: RESOURCE_SCOPES,
        audience: indicator,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  // Any account id exists; its `sub` and `preferred_username` are the login
  // typed at approval, its `oid` a GUID derived from it.
  findAccount: (_ctx, id) => ({
    accountId: id,
    claims: () => ({ sub: id, oid: objectId(id), tid: tenant, preferred_username: id, name: id }),
  }),
  // Auto-consent: a device approval is a login only.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid offline_access profile');
    grant.addResourceScope(resource, RESOURCE_SCOPES);
    await grant.save();
    return grant;
  },
  ttl,
});
provider.proxy = false;
// Entra answers `client_info=1` with `client_info`, base64url JSON
// `{uid, utid}` (object id, home tenant), from which MSAL keys its cache.
provider.use(async (ctx, next) => {
  await next();
  const body = ctx.body;
  if (ctx.path.endsWith('/oauth2/v2.0/token') && body && typeof body === 'object' && body.id_token) {
    const claims = JSON.parse(Buffer.from(body.id_token.split('.')[1], 'base64url').toString('utf8'));
    ctx.body = {
      ...body,
      client_info: Buffer.from(JSON.stringify({ uid: objectId(claims.sub), utid: tenant })).toString('base64url'),
    };
  }
});
server.on('request', provider.callback());
console.log(`LISTENING ${port}`);
