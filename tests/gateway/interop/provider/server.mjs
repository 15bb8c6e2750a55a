// An external OpenID provider for the interop tests: panva/oidc-provider issuing RFC 9068 JWT
// access tokens for the gateway's audience (resource indicators) by client credentials, by
// code + PKCE to the gateway's browser client and by the device flow to the CLI. Users sign in
// on the provider's development interactions (any login, any password).
// Started by tests/gateway/interop; prints one JSON line {"issuer": ...} once it listens.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const audience = process.env.INTEROP_AUDIENCE ?? 'sealflow-gateway';
const resource = process.env.INTEROP_RESOURCE ?? 'https://gateway.sealflow.test/';
const clientId = process.env.INTEROP_CLIENT_ID ?? 'sealflow-interop';
const clientSecret = process.env.INTEROP_CLIENT_SECRET;
if (!clientSecret) throw new Error('INTEROP_CLIENT_SECRET must be set');
const webClientId = process.env.INTEROP_WEB_CLIENT_ID ?? 'sealflow-web';
const webRedirectUri = process.env.INTEROP_WEB_REDIRECT_URI ?? 'http://127.0.0.1/callback';
const cliClientId = process.env.INTEROP_CLI_CLIENT_ID ?? 'sealflow-cli';
const deviceCodeGrant = 'urn:ietf:params:oauth:grant-type:device_code';

const signing = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
const jwks = { keys: [{ ...signing, kid: randomBytes(8).toString('hex'), use: 'sig' }] };

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    jwks,
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'client_secret_post',
      scope: 'jobs:read jobs:write',
    }, {
      client_id: webClientId,
      grant_types: ['authorization_code', 'refresh_token'],
      redirect_uris: [webRedirectUri],
      response_types: ['code'],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'none',
    }, {
      client_id: cliClientId,
      grant_types: [deviceCodeGrant, 'refresh_token'],
      redirect_uris: [],
      response_types: [],
      id_token_signed_response_alg: 'ES256',
      token_endpoint_auth_method: 'none',
    }],
    scopes: ['openid', 'offline_access', 'jobs:read', 'jobs:write'],
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      deviceFlow: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, indicator) => {
          if (indicator !== resource) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'jobs:read jobs:write',
            audience,
            accessTokenTTL: 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'ES256' } },
          };
        },
      },
    },
    extraTokenClaims: () => ({ roles: ['user'] }),
  });
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
