// oauth4webapi as a confidential client (client_secret_basic): a pushed authorization request
// (RFC 9126), the browser's round trip done by the test, then the code exchanged with PKCE.
import * as oauth from 'oauth4webapi'
import { receive, run, send } from './lines.mjs'

const insecure = { [oauth.allowInsecureRequests]: true } // the test's server is on loopback http

await run(async () => {
  const config = await receive()
  const issuer = new URL(config.issuer)
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oidc', ...insecure }),
  )
  const client = { client_id: config.client_id }
  const auth = oauth.ClientSecretBasic(config.client_secret)
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const nonce = oauth.generateRandomNonce()
  const pushed = await oauth.processPushedAuthorizationResponse(
    as,
    client,
    await oauth.pushedAuthorizationRequest(
      as,
      client,
      auth,
      {
        response_type: 'code',
        redirect_uri: config.redirect_uri,
        scope: config.scope,
        state,
        nonce,
        code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
        code_challenge_method: 'S256',
      },
      insecure,
    ),
  )
  const url = new URL(as.authorization_endpoint)
  url.searchParams.set('client_id', client.client_id)
  url.searchParams.set('request_uri', pushed.request_uri)
  send({ authorization_url: url.href, request_uri: pushed.request_uri, expires_in: pushed.expires_in })

  const { callback } = await receive()
  const params = oauth.validateAuthResponse(as, client, new URL(callback), state)
  const tokens = await oauth.processAuthorizationCodeResponse(
    as,
    client,
    await oauth.authorizationCodeGrantRequest(
      as,
      client,
      auth,
      params,
      config.redirect_uri,
      verifier,
      insecure,
    ),
    { expectedNonce: nonce, requireIdToken: true },
  )
  const claims = oauth.getValidatedIdTokenClaims(tokens)
  send({
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token ?? null,
    scope: tokens.scope ?? null,
    id_token_sub: claims.sub,
  })
})
