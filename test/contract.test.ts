import t from 'tap'
import { call, createUser, login, startApp } from './helpers/app.js'

t.test('obtain pair', async (t) => {
  const { url, store } = await startApp(t)
  await createUser(store)
  const pair = await login(url)
  t.type(pair.access, 'string')
  const me = await call(url, '/api/me/', { token: pair.access })
  t.equal(me.status, 200)
  t.same(me.body, { id: 1, username: 'alice' })
})
