// oauth4webapi's client_credentials grant with a DPoP proof (RFC 9449), answering one
// use_dpop_nonce challenge as the library's documentation shows.
import * as oauth from 'oauth4webapi'
import { receive, run, send } from './lines.mjs'

const insecure = { [oauth.allowInsecureRequests]: true }

await run(async () => {
  const config = await receive()
  const issuer = new URL(config.issuer)
  const as = await oauth.processDiscoveryResponse(
    issuer,
    await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure }),
  )
  const client = { client_id: config.client_id }
  const auth = oauth.ClientSecretBasic(config.client_secret)
  const keys = await oauth.generateKeyPair('ES256')
  const DPoP = oauth.DPoP(client, keys)
  const request = () =>
    oauth.clientCredentialsGrantRequest(as, client, auth, { scope: config.scope }, { DPoP, ...insecure })
  let tokens
  try {
    tokens = await oauth.processClientCredentialsResponse(as, client, await request())
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err
    tokens = await oauth.processClientCredentialsResponse(as, client, await request())
  }
  send({
    token_type: tokens.token_type,
    access_token: tokens.access_token,
    jkt: await DPoP.calculateThumbprint(),
  })
})
