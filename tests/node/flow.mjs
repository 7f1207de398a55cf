// openid-client v6 (a certified OpenID relying party library) against the server, unmodified
// and configured with nothing but the issuer URL. Driven by tests/e2e/test_openid_client.py:
//
//   node flow.mjs authorize ISSUER CLIENT_ID REDIRECT_URI
//     discovery, then the authorization URL with PKCE S256, state and nonce; prints JSON
//     {url, verifier, state, nonce}
//   node flow.mjs finish ISSUER CLIENT_ID CALLBACK_URL VERIFIER STATE NONCE
//     authorizationCodeGrant (checks state, iss, the code, and the ID token: signature against
//     the JWKS, iss, aud, nonce, at_hash...), fetchUserInfo, refreshTokenGrant; prints JSON
//   node flow.mjs logout ISSUER CLIENT_ID ID_TOKEN POST_LOGOUT_REDIRECT_URI STATE
//     buildEndSessionUrl from the discovered end_session_endpoint; prints JSON {url}
//   node flow.mjs register ISSUER INITIAL_ACCESS_TOKEN REDIRECT_URI
//     dynamicClientRegistration (RFC 7591: discovery, then the registration endpoint with the
//     initial access token); prints the client's metadata as the server returned it
//
// With CLIENT_SECRET in the environment the client authenticates with client_secret_basic
// (a confidential client, such as one registered dynamically); without, with none.
import * as client from "openid-client";

const [mode, issuer, clientId, ...rest] = process.argv.slice(2);
const secret = process.env.CLIENT_SECRET;

async function configure() {
  // Plain http is for this loopback test only; a production issuer is https.
  const auth = secret ? client.ClientSecretBasic(secret) : client.None();
  return client.discovery(new URL(issuer), clientId, secret, auth, {
    execute: [client.allowInsecureRequests],
  });
}

async function register(initialAccessToken, redirectUri) {
  const config = await client.dynamicClientRegistration(
    new URL(issuer),
    {
      client_name: "openid-client (dynamically registered)",
      redirect_uris: [redirectUri],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "openid profile email offline_access restaurants:read",
    },
    undefined,
    { initialAccessToken, execute: [client.allowInsecureRequests] },
  );
  return { metadata: config.clientMetadata(), server: config.serverMetadata() };
}

async function authorize(redirectUri) {
  const config = await configure();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: "openid profile email offline_access restaurants:read",
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: "S256",
    state,
    nonce,
  });
  return { url: url.href, verifier, state, nonce };
}

async function finish(callback, verifier, state, nonce) {
  const config = await configure();
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  return {
    metadata: config.serverMetadata(),
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token,
    id_token: tokens.id_token,
    claims,
    userinfo,
    refreshed: {
      access_token: refreshed.access_token,
      refresh_token: refreshed.refresh_token,
      claims: refreshed.claims() ?? null,
    },
  };
}

async function logout(idToken, postLogoutRedirectUri, state) {
  const config = await configure();
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: idToken,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state,
  });
  return { url: url.href };
}

const modes = {
  authorize: (...args) => authorize(...args),
  finish: (...args) => finish(...args),
  logout: (...args) => logout(...args),
  // The second argument is the initial access token here, not a client id.
  register: (...args) => register(clientId, ...args),
};
const result = await modes[mode](...rest);
process.stdout.write(JSON.stringify(result));
