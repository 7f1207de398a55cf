// node-oidc-provider configured like the PythonOauthServer demo: the reference server of the benchmark.
//
// Environment: PORT (default 3000), FORMAT ('jwt' | 'opaque', default 'jwt'),
// RESOURCE (default 'http://127.0.0.1:8889/restaurent'), STORE_SIZE (entries of the in-memory
// adapter's LRU store; default 1000, node-oidc-provider's own).
//
// For the sign-in scenarios it also has the public client 'spa' (authorization_code with PKCE
// S256 and refresh_token, rotated on every use) and a route that only a benchmark has:
// POST /bench/mint?n=N pre-issues N authorization codes for the user 'bench-user' the way the
// authorization endpoint would (one Grant each, scope 'openid offline_access restaurent', the
// PKCE challenge of BENCH_CODE_VERIFIER) and answers them one per line. The codes live in
// node-oidc-provider's own in-memory adapter, whose store is sized by STORE_SIZE: at its
// default of 1000 entries, pre-issued codes would be evicted before they are redeemed.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';
import LRU from 'oidc-provider/lib/helpers/lru.js';

const port = Number(process.env.PORT ?? 3000);
const format = process.env.FORMAT ?? 'jwt';
const resource = process.env.RESOURCE ?? 'http://127.0.0.1:8889/restaurent';
if (!['jwt', 'opaque'].includes(format)) {
  throw new Error(`FORMAT must be 'jwt' or 'opaque', got '${format}'`);
}
// node-oidc-provider's own in-memory adapter, over a store of STORE_SIZE entries.
const store = new LRU({ maxSize: Number(process.env.STORE_SIZE ?? 1000) });
const REDIRECT_URI = 'http://127.0.0.1/cb';
const SIGNIN_SCOPE = 'openid offline_access restaurent';
const verifier = process.env.BENCH_CODE_VERIFIER ?? 'bench-verifier-'.padEnd(64, 'x');
const challenge = createHash('sha256').update(verifier).digest('base64url');

// A throwaway benchmark key, made fresh at every start.
const signingKey = {
  ...generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }),
  kid: 'bench-es256',
  alg: 'ES256',
  use: 'sig',
};

const machineClient = (clientId, authMethod) => ({
  client_id: clientId,
  client_secret: 'getroot',
  token_endpoint_auth_method: authMethod,
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: 'restaurent',
});

const provider = new Provider(`http://127.0.0.1:${port}`, {
  adapter: (model) => new MemoryAdapter(model, store),
  clients: [
    machineClient('admin', 'client_secret_post'),
    machineClient('admin-basic', 'client_secret_basic'),
    {
      client_id: 'spa',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [REDIRECT_URI],
      scope: SIGNIN_SCOPE,
    },
  ],
  scopes: ['openid', 'offline_access', 'restaurent'],
  // Rotation on every use, as ours (node's default rotates for public clients too).
  rotateRefreshToken: true,
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [signingKey] },
  ttl: {
    ClientCredentials: 3600,
    AccessToken: 3600,
    AuthorizationCode: 600,
    IdToken: 3600,
    RefreshToken: 14 * 86400,
    Grant: 14 * 86400,
  },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      // Any authenticated client may introspect: the default policy, minus its first-use notice.
      allowedPolicy: async (ctx, client, token) => (
        client.clientAuthMethod !== 'none' || token.clientId === client.clientId
      ),
    },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      // The code's access token is for the restaurants API, as ours (a JWT when FORMAT=jwt).
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'restaurent',
        audience: resource,
        accessTokenTTL: 3600,
        accessTokenFormat: format,
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

async function mint(count) {
  const client = await provider.Client.find('spa');
  const codes = [];
  for (let i = 0; i < count; i += 1) {
    const grant = new provider.Grant({ accountId: 'bench-user', clientId: 'spa' });
    grant.addOIDCScope('openid offline_access');
    grant.addResourceScope(resource, 'restaurent');
    const grantId = await grant.save();
    const code = new provider.AuthorizationCode({
      client,
      accountId: 'bench-user',
      grantId,
      scope: SIGNIN_SCOPE,
      resource,
      redirectUri: REDIRECT_URI,
      codeChallenge: challenge,
      codeChallengeMethod: 'S256',
      authTime: Math.floor(Date.now() / 1000),
    });
    codes.push(await code.save());
  }
  return codes;
}

provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/bench/mint') {
    const count = Math.min(Number(ctx.query.n ?? 1), 1_000_000);
    ctx.type = 'text/plain';
    ctx.body = `${(await mint(count)).join('\n')}\n`;
    return;
  }
  await next();
});

if (process.env.BENCH_DEBUG) provider.on('grant.error', (ctx, err) => console.error(err));

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port} (FORMAT=${format})`);
});
