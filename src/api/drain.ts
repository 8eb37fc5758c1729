// Connection draining for a graceful stop, so that `pm2 reload` and rolling restarts lose nothing.
//
// Fastify's own close() closes idle keep-alive sockets at once and answers 503 to any request
// that still arrives on an open one. Under load that races: a client's next request is often
// already on the wire when its socket is cut, and it sees a reset or a 503. So a stopping worker
// first only stops accepting (in a pm2 worker: leaves the master's round robin, the other workers
// take the new connections) and keeps answering the requests in flight and those that arrive on
// its open connections, each with `Connection: close`, so every client moves on after a complete
// response. What is still open after `idleMs` is idle: those sockets are closed, in-flight
// requests are waited for, and only then is the app (and its store) closed.
//
// Every socket is closed in stages, as RFC 9112 §9.6 asks: first only the write side (after its
// last response: the client reads the whole answer, then the end of the stream), then reading on
// until the client closes or `idleMs` passes. Node's own close would destroy the socket as soon as the
// response is written; a request the client sent meanwhile is then unread, and the kernel answers
// it with a reset the client sees instead of the end of stream. Over loopback TCP the end usually
// arrives first; over a Unix socket (UNIX_SOCKET) the reset wins: 9–13 errors per pm2 reload.
import { Server as NetServer, type Socket } from 'node:net'
import type { FastifyInstance, FastifyReply } from 'fastify'

/**
 * Call before listen(); the returned function drains, and resolves once no connection is left.
 * `alsoAccepting` holds the other servers feeding app.server connections (the UNIX_SOCKET door);
 * it is read when the drain starts, so it may be filled after this call.
 */
export function connectionDrainer(app: FastifyInstance, idleMs: number, alsoAccepting: readonly NetServer[] = []): () => Promise<void> {
  let draining = false
  const toldToClose = new WeakSet<Socket>()
  const tellToClose = (socket: Socket, reply: FastifyReply) => {
    reply.header('connection', 'close')
    toldToClose.add(socket)
    // Node's http server calls destroySoon() once a `Connection: close` response is written.
    socket.destroySoon = () => closeInStages(socket, idleMs)
  }
  // Requests in flight when the drain starts are told to close too, without a hook on every
  // response (an onSend hook cost ~2% of a cheap request): each socket remembers the reply it
  // is serving, and the drain marks the ones not yet sent.
  const open = new Set<Socket>()
  const serving = new WeakMap<Socket, FastifyReply>()
  let noneOpen: (() => void) | undefined
  app.server.on('connection', (socket: Socket) => {
    open.add(socket)
    socket.once('close', () => {
      open.delete(socket)
      if (open.size === 0) noneOpen?.()
    })
  })
  // One callback-style hook: on the hot path it costs a flag check and a WeakMap write.
  app.addHook('onRequest', (request, reply, done) => {
    const socket = request.raw.socket
    if (draining) {
      // A client that ignores `Connection: close` may already have sent its next request on this
      // socket. It is dropped unprocessed and unanswered (the socket is closing, as announced):
      // handling it would, say, rotate a refresh token whose answer can no longer reach the client.
      if (toldToClose.has(socket)) {
        reply.hijack()
        return
      }
      tellToClose(socket, reply)
    }
    serving.set(socket, reply)
    done()
  })

  return async function drain() {
    if (draining) return
    draining = true
    for (const socket of open) {
      const reply = serving.get(socket)
      if (reply && !reply.raw.headersSent) tellToClose(socket, reply)
    }
    // net.Server's close stops accepting and keeps open connections (http.Server's would also cut
    // idle keep-alive sockets right now).
    for (const door of [app.server, ...alsoAccepting]) NetServer.prototype.close.call(door)
    const closed = new Promise<void>((resolve) => {
      noneOpen = resolve
      if (open.size === 0) resolve()
    })
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closed, new Promise((resolve) => (timer = setTimeout(resolve, idleMs)))])
    clearTimeout(timer)
    // Whatever is still open is mid-request (told to close: it closes after its answer) or idle.
    // Idle ones are closed in stages too, so a request the client is just sending meets the end of
    // the stream, not a reset (http.Server's closeIdleConnections would destroy them).
    for (const socket of open) {
      if (toldToClose.has(socket) || serving.get(socket)?.raw.writableEnded === false) continue
      toldToClose.add(socket)
      closeInStages(socket, idleMs)
    }
    await closed
  }
}

/** Ends the write side now; destroys the socket when the client has closed its side, or after `lingerMs`. */
function closeInStages(socket: Socket, lingerMs: number): void {
  socket.end()
  // http.Server ends its side when the client's end arrives, and the socket then closes by itself.
  const timer = setTimeout(() => socket.destroy(), lingerMs)
  timer.unref()
  socket.once('close', () => clearTimeout(timer))
}
