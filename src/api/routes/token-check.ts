// Token checks shared by the pair and sliding token routes, failing with simplejwt's answers.
import type { TokenService, Claims, Expected } from '../auth/tokens.js'
import { TokenInvalid } from '../auth/tokens.js'
import { ApiError, AUTH_CHALLENGE, errors } from '../errors.js'

/** Verifies, mapping failures to simplejwt's token_not_valid answer. */
export function checkToken(tokens: TokenService, token: string, expected?: Expected): Claims {
  try {
    return tokens.verify(token, expected)
  } catch (err) {
    if (err instanceof TokenInvalid) throw errors.tokenNotValid(err.reason)
    throw err
  }
}

/** simplejwt's refresh serializers: the token's user is gone or inactive. */
export const noActiveAccountForToken = () =>
  new ApiError(401, { detail: 'No active account found for the given token.', code: 'no_active_account' }, { 'www-authenticate': AUTH_CHALLENGE })
