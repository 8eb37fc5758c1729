// Optional sign-up (REGISTRATION_ENABLED=true; simplejwt has no such view). Field errors as Django's
// user-creation form gives them: the username rule, "A user with that username already exists.",
// and the password rules. What the answer reveals: only whether a chosen username is taken, which a
// sign-up with chosen usernames cannot hide; the time it takes does not (a valid password is
// hashed whether or not the name is free), and the attempts share the per-IP login limit, so
// probing for names costs as much as guessing passwords.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { passwordProblems } from '../auth/password-rules.js'
import { isValidUsername, UsernameMessages } from '../auth/usernames.js'
import { errors } from '../errors.js'
import { DuplicateUserError } from '../store/store.js'
import { errorResponses } from './schemas.js'
import { ObtainBody } from './token.js'

const Registered = Type.Object({ id: Type.Integer(), username: Type.String() })

const registerRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { store, passwords } = app

  app.post(
    '/api/register/',
    {
      schema: {
        tags: ['user'],
        summary: 'Sign up: create an active user (then log in with /api/token/). Rate-limited per client IP with logins',
        body: ObtainBody,
        response: { 201: Registered, ...errorResponses(400, 429, 503) },
      },
      onRequest: app.limits.loginByIp,
    },
    async (request, reply) => {
      const { username, password } = request.body
      const fields: Record<string, string[]> = {}
      if (!isValidUsername(username)) fields.username = [UsernameMessages.invalid]
      const problems = await passwordProblems(password, username)
      if (problems.length) fields.password = problems
      if (Object.keys(fields).length) throw errors.fields(fields)
      // Hash first, taken or not: the answer takes the same time either way. (The hasher's queue
      // bound applies: beyond it, 503 + Retry-After, as for logins.)
      const [existing, hash] = await Promise.all([store.findUserByUsername(username), passwords.hash(password)])
      if (existing) throw errors.fields({ username: [UsernameMessages.taken] })
      try {
        const user = await store.createUser(username, hash)
        return reply.code(201).send({ id: user.id, username: user.username })
      } catch (err) {
        // Two sign-ups for one name at once: the loser gets the same answer as above.
        if (err instanceof DuplicateUserError) throw errors.fields({ username: [UsernameMessages.taken] })
        throw err
      }
    },
  )
}

export default registerRoutes
