// Password change: proves the old password, checks the new one, then revokes every session of
// the user (on every worker within one revocation poll), so a stolen token dies with the change.
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from 'typebox'
import { passwordProblems } from '../auth/password-rules.js'
import { errors } from '../errors.js'
import { bearer, errorResponses } from './schemas.js'

const ChangeBody = Type.Object({
  old_password: Type.String({ minLength: 1, maxLength: 4096 }),
  new_password: Type.String({ minLength: 1, maxLength: 4096 }),
})
const Changed = Type.Object({ detail: Type.String() })

const passwordRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.post(
    '/api/password/change/',
    {
      schema: {
        tags: ['user'],
        summary: 'Change the password; signs out every session of the user',
        security: bearer,
        body: ChangeBody,
        response: { 200: Changed, ...errorResponses(400, 401, 503) },
      },
      preHandler: app.authenticate,
    },
    async (request) => {
      // Authentication reads no hash; the one to check against is read here.
      const user = await app.store.findUserById(request.auth!.user.id)
      if (!user) throw errors.userNotFound()
      const { old_password, new_password } = request.body
      if (!(await app.passwords.verify(old_password, user.passwordHash))) {
        throw errors.fields({ old_password: ['Your old password was entered incorrectly. Please enter it again.'] })
      }
      const problems = await passwordProblems(new_password, user.username)
      if (problems.length) throw errors.fields({ new_password: problems })
      await app.store.setPassword(user.id, await app.passwords.hash(new_password))
      await app.revocations.sync()
      return { detail: 'Password changed; every session of this user has been signed out.' }
    },
  )
}

export default passwordRoutes
