// host init's generated settings and the nginx upstream it derives from the host's .env.
import t from 'tap'
import { parse } from 'dotenv'
import { productionEnv, upstreamOf } from '../../../src/ops/deploy/host-init.js'

t.test('a new host: the app also listens on a socket under shared/run, and nginx proxies to it', async (t) => {
  const env = productionEnv(3000, '/srv/runway')
  t.match(parse(env), { NODE_ENV: 'production', PORT: '3000', UNIX_SOCKET: '/srv/runway/shared/run/app.sock', TRUST_PROXY: '127.0.0.1' })
  t.equal(upstreamOf(env, 3000), 'unix:/srv/runway/shared/run/app.sock')
})

t.test('an .env from before UNIX_SOCKET is kept, and nginx keeps reaching the app on its PORT', async (t) => {
  t.equal(upstreamOf('NODE_ENV=production\nPORT=3100\n', 3000), '127.0.0.1:3100', "the host's own PORT, not the flag's")
  t.equal(upstreamOf('NODE_ENV=production\n', 3000), '127.0.0.1:3000')
})

t.test('under a root too long for a socket path the app stays on TCP only', async (t) => {
  const root = `/srv/${'x'.repeat(100)}`
  const env = productionEnv(3000, root)
  t.notOk(parse(env).UNIX_SOCKET, 'no UNIX_SOCKET the app would refuse at start')
  t.equal(upstreamOf(env, 3000), '127.0.0.1:3000')
})
