// node-oidc-provider configured as close to Tokensmith's defaults as it allows, for `make bench`.
//
// Same clients (client_secret_basic), ES256 JWT access tokens per RFC 9068 or opaque ones, the
// same lifetimes (access 300 s, refresh 30 days), refresh tokens rotated on every use, PKCE S256.
// Storage is in memory (node-oidc-provider's own default is an LRU of 1000 entries, which cannot
// hold the seeded codes; this Map does the same job without the cap). Tokensmith writes to a real
// database, so this is the peer at its fastest.
//
// Environment: PORT, ISSUER, WORKERS (1 = one process; N > 1 = node:cluster with N workers),
// BENCH_CONFIG (JSON written by bench/run.py: clients, resource, seeds).
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT ?? 9000);
const ISSUER = process.env.ISSUER ?? `http://127.0.0.1:${PORT}`;
const WORKERS = Number(process.env.WORKERS ?? 1);
const config = JSON.parse(readFileSync(process.env.BENCH_CONFIG, 'utf8'));

const ACCESS_TTL = 300;
const REFRESH_TTL = 30 * 86400;
const now = () => Math.floor(Date.now() / 1000);

// One store per process, keyed like node-oidc-provider's memory adapter ("Model:id").
const store = new Map();

class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload) {
    store.set(this.key(id), payload);
  }

  async find(id) {
    return store.get(this.key(id));
  }

  async findByUid(uid) {
    return store.get(`sessionUid:${uid}`);
  }

  async findByUserCode() {
    return undefined;
  }

  async consume(id) {
    const payload = store.get(this.key(id));
    if (payload) payload.consumed = now();
  }

  async destroy(id) {
    store.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    // Only reached on reuse, which the benchmark never does; a scan keeps the adapter simple.
    for (const [key, payload] of store) {
      if (payload && payload.grantId === grantId) store.delete(key);
    }
  }
}

function signingKey() {
  // Every worker must sign with the same key, so the key comes from the config file.
  if (config.jwk) return config.jwk;
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return privateKey.export({ format: 'jwk' });
}

function clientMetadata(client) {
  return {
    client_id: client.client_id,
    client_secret: client.client_secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: client.grant_types,
    response_types: client.grant_types.includes('authorization_code') ? ['code'] : [],
    redirect_uris: client.redirect_uris ?? [],
    scope: client.scope,
    id_token_signed_response_alg: 'ES256',
  };
}

function buildProvider() {
  const opaque = new Set(config.clients.filter((c) => c.format === 'opaque').map((c) => c.client_id));
  return new Provider(ISSUER, {
    adapter: MapAdapter,
    clients: config.clients.map(clientMetadata),
    jwks: { keys: [{ ...signingKey(), alg: 'ES256', use: 'sig', kid: 'bench-es256' }] },
    cookies: { keys: [config.cookie_key] },
    scopes: ['openid', 'offline_access', 'api:read', 'api:write'],
    findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
    pkce: { required: () => true },
    rotateRefreshToken: true,
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    ttl: {
      AccessToken: ACCESS_TTL,
      ClientCredentials: ACCESS_TTL,
      AuthorizationCode: 60,
      IdToken: ACCESS_TTL,
      RefreshToken: REFRESH_TTL,
      Grant: REFRESH_TTL,
      Session: 8 * 3600,
      Interaction: 3600,
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: async (ctx, client) => client.clientAuthMethod !== 'none',
      },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => config.resource,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resource, client) => ({
          scope: 'api:read api:write',
          audience: resource,
          accessTokenTTL: ACCESS_TTL,
          accessTokenFormat: opaque.has(client.clientId) ? 'opaque' : 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
}

// Seeds are written straight into the store, with values the bench runner chose, so that every
// worker of a cluster knows every code and refresh token (a Map is per process).
async function seed(provider) {
  const { AuthorizationCode, RefreshToken, Grant, ClientCredentials } = provider;
  const t = now();
  const s = config.seed ?? {};
  const grants = new Map();
  const grantFor = async (clientId, sub) => {
    const key = `${clientId}/${sub}`;
    if (!grants.has(key)) {
      const grant = new Grant({ accountId: sub, clientId });
      grant.addOIDCScope('openid offline_access');
      grant.addResourceScope(config.resource, 'api:read');
      grants.set(key, await grant.save(REFRESH_TTL));
    }
    return grants.get(key);
  };
  for (const value of readLines(s.codes_file)) {
    const grantId = await grantFor(s.code_client, s.subject);
    await new AuthorizationCode({
      jti: value,
      clientId: s.code_client,
      accountId: s.subject,
      grantId,
      scope: 'openid offline_access api:read',
      resource: config.resource,
      redirectUri: s.redirect_uri,
      codeChallenge: s.code_challenge,
      codeChallengeMethod: 'S256',
      authTime: t,
      iat: t,
      exp: t + 3600,
    }).save(3600);
  }
  for (const value of readLines(s.refresh_file)) {
    const grantId = await grantFor(s.code_client, s.subject);
    await new RefreshToken({
      jti: value,
      clientId: s.code_client,
      accountId: s.subject,
      grantId,
      gty: 'authorization_code',
      scope: 'openid offline_access api:read',
      resource: config.resource,
      rotations: 0,
      iiat: t,
      iat: t,
      exp: t + REFRESH_TTL,
    }).save(REFRESH_TTL);
  }
  // Opaque access tokens: the one introspected, and the filler of the scaling scenarios.
  const resourceServer = new provider.ResourceServer(config.resource, {
    scope: 'api:read api:write',
    audience: config.resource,
    accessTokenFormat: 'opaque',
  });
  const issue = (jti) => {
    const token = new ClientCredentials({
      jti, clientId: s.opaque_client, resourceServer, scope: 'api:read', iat: t, exp: t + 3600,
    });
    token.format = 'opaque'; // set by generateTokenId, which a chosen jti skips
    return token.save(3600);
  };
  const introspected = s.introspect_token ?? `filler-${t}`;
  await issue(introspected);
  // The filler copies the stored payload of a real save (only the id differs): a million model
  // saves would take half a minute, a million Map entries take a second.
  const template = store.get(`ClientCredentials:${introspected}`);
  for (let i = 0; i < (s.filler ?? 0); i += 1) {
    const jti = `filler-${i}-${t}`;
    store.set(`ClientCredentials:${jti}`, { ...template, jti });
  }
}

function* readLines(path) {
  if (!path) return;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line) yield line;
  }
}

async function serve() {
  const provider = buildProvider();
  await seed(provider);
  provider.listen(PORT, '127.0.0.1');
  if (process.send) process.send('ready');
  else console.log(`ready ${PORT}`);
}

if (WORKERS > 1 && cluster.isPrimary) {
  // Round-robin scheduling (node's default on Linux) spreads connections evenly.
  let ready = 0;
  for (let i = 0; i < WORKERS; i += 1) {
    cluster.fork().on('message', (message) => {
      ready += message === 'ready' ? 1 : 0;
      if (ready === WORKERS) console.log(`ready ${PORT}`);
    });
  }
  cluster.on('exit', () => process.exit(1));
} else {
  serve().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
