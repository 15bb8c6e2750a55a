// An external OpenID provider for the interop tests: panva/oidc-provider issuing RFC 9068 JWT
// access tokens for the gateway's audience (resource indicators), with client credentials.
// Started by tests/interop; prints one JSON line {"issuer": ...} once it listens.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

const audience = process.env.INTEROP_AUDIENCE ?? 'sealflow-gateway';
const resource = process.env.INTEROP_RESOURCE ?? 'https://gateway.sealflow.test/';
const clientId = process.env.INTEROP_CLIENT_ID ?? 'sealflow-interop';
const clientSecret = process.env.INTEROP_CLIENT_SECRET;
if (!clientSecret) throw new Error('INTEROP_CLIENT_SECRET must be set');

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
    }],
    scopes: ['openid', 'jobs:read', 'jobs:write'],
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
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
