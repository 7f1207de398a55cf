// node-oidc-provider configured like the PythonOauthServer demo: the reference server of the benchmark.
//
// Environment: PORT (default 3000), FORMAT ('jwt' | 'opaque', default 'jwt'),
// RESOURCE (default 'http://127.0.0.1:8889/restaurent').
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider from 'oidc-provider';

const port = Number(process.env.PORT ?? 3000);
const format = process.env.FORMAT ?? 'jwt';
const resource = process.env.RESOURCE ?? 'http://127.0.0.1:8889/restaurent';
if (!['jwt', 'opaque'].includes(format)) {
  throw new Error(`FORMAT must be 'jwt' or 'opaque', got '${format}'`);
}

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
  clients: [
    machineClient('admin', 'client_secret_post'),
    machineClient('admin-basic', 'client_secret_basic'),
  ],
  scopes: ['openid', 'restaurent'],
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  jwks: { keys: [signingKey] },
  ttl: { ClientCredentials: 3600 },
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

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on http://127.0.0.1:${port} (FORMAT=${format})`);
});
