// The UNIX_SOCKET door (src/api/unix-listener.ts) on a real http.Server: it serves, opens the socket
// to nginx's user, replaces a dead process's socket file, and never steals a live one or a file
// that is not a socket.
import t, { type Test } from 'tap'
import http from 'node:http'
import { mkdtempSync, rmSync, statSync, existsSync, writeFileSync } from 'node:fs'
import { createServer, type Server as NetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { listenOnUnixSocket } from '../../src/api/unix-listener.js'

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'runway-sock-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function httpServer(t: Test): http.Server {
  const server = http.createServer((_req, res) => res.end('hello'))
  t.teardown(() => server.close())
  return server
}

const get = (socketPath: string) =>
  new Promise<string>((resolve, reject) => {
    http
      .get({ socketPath, path: '/', agent: false }, (res) => {
        let body = ''
        res.on('data', (c) => (body += c))
        res.on('end', () => resolve(body))
      })
      .on('error', reject)
  })

const close = (door: NetServer) => new Promise<void>((resolve) => door.close(() => resolve()))

t.test('serves the http server, creates the directory, mode 0666, removed on close', async (t) => {
  const path = join(tempDir(t), 'run', 'app.sock')
  const door = await listenOnUnixSocket(httpServer(t), path)
  t.equal(await get(path), 'hello')
  t.ok(statSync(path).isSocket(), 'a socket in the directory it made')
  t.equal(statSync(path).mode & 0o777, 0o666, 'connectable by nginx, another user')
  await close(door)
  t.notOk(existsSync(path), 'closing removes the file')
})

t.test("a dead process's socket file is replaced", async (t) => {
  const path = join(tempDir(t), 'app.sock')
  // A process that bound the socket and exited without closing it leaves the file behind.
  const bound = spawnSync(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`])
  t.equal(bound.status, 0)
  t.ok(statSync(path).isSocket(), 'a stale socket file')
  const door = await listenOnUnixSocket(httpServer(t), path)
  t.teardown(() => door.close())
  t.equal(await get(path), 'hello', 'served on the same path')
})

t.test('a live socket of another server is not taken over', async (t) => {
  const path = join(tempDir(t), 'app.sock')
  const other = createServer((s) => s.destroy())
  await new Promise<void>((resolve) => other.listen(path, resolve))
  t.teardown(() => other.close())
  await t.rejects(listenOnUnixSocket(httpServer(t), path), { message: `UNIX_SOCKET ${path}: another process listens on it` })
  t.ok(statSync(path).isSocket(), 'its socket is still there')
})

t.test('a file that is not a socket is refused, not replaced', async (t) => {
  const path = join(tempDir(t), 'app.sock')
  writeFileSync(path, 'data')
  await t.rejects(listenOnUnixSocket(httpServer(t), path), { message: `UNIX_SOCKET ${path} exists and is not a socket: refusing to replace it` })
  t.ok(statSync(path).isFile(), 'the file is untouched')
})
