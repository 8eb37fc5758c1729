// Errors are data: routes and plugins throw ApiError, and the error plugin turns it into the
// response. Bodies follow djangorestframework-simplejwt, so its clients parse them unchanged.

export type ErrorBody = { detail: string; code?: string; [key: string]: unknown }

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.detail === 'string' ? body.detail : `HTTP ${statusCode}`)
  }
}

/** Retry-After (seconds) on a 503 for a store fault: longer than load shedding's, faults last. */
export const STORE_RETRY_AFTER_S = 5

/** The realm every 401 names in WWW-Authenticate. */
export const AUTH_CHALLENGE = 'Bearer realm="api"'

const unauthorized = (body: ErrorBody) => new ApiError(401, body, { 'www-authenticate': AUTH_CHALLENGE })

export const TokenMessages = {
  invalid: 'Token is invalid or expired',
  wrongType: 'Token has wrong type',
  blacklisted: 'Token is blacklisted',
} as const

export const errors = {
  noActiveAccount: () => unauthorized({ detail: 'No active account found with the given credentials' }),
  tokenNotValid: (message: string) => unauthorized({ detail: message, code: 'token_not_valid' }),
  notAuthenticated: () => unauthorized({ detail: 'Authentication credentials were not provided.' }),
  badAuthorizationHeader: () => unauthorized({ detail: 'Authorization header must contain two space-delimited values', code: 'bad_authorization_header' }),
  /** simplejwt's JWTAuthentication: one message per accepted token class (SlidingToken when on). */
  accessTokenNotValid: (message: string, slidingMessage?: string) =>
    unauthorized({
      detail: 'Given token not valid for any token type',
      code: 'token_not_valid',
      messages: [
        { token_class: 'AccessToken', token_type: 'access', message },
        ...(slidingMessage ? [{ token_class: 'SlidingToken', token_type: 'sliding', message: slidingMessage }] : []),
      ],
    }),
  userNotFound: () => unauthorized({ detail: 'User not found', code: 'user_not_found' }),
  userInactive: () => unauthorized({ detail: 'User is inactive', code: 'user_inactive' }),
  fields: (problems: Record<string, string[]>) => new ApiError(400, problems),
  throttled: (seconds: number) =>
    new ApiError(
      429,
      { detail: `Request was throttled. Expected available in ${seconds} second${seconds === 1 ? '' : 's'}.` },
      { 'retry-after': String(seconds) },
    ),
  /** The store cannot serve (down, full, read-only, corrupt): worth retrying in a few seconds. */
  storeUnavailable: () => new ApiError(503, { detail: 'Service temporarily unavailable, try again later.' }, { 'retry-after': String(STORE_RETRY_AFTER_S) }),
  overloaded: () => new ApiError(503, { detail: 'Service temporarily unavailable, try again later.' }, { 'retry-after': '1' }),
}
