// Raw HTTP over node:net, for requests fetch() refuses to send (CONNECT, malformed request lines,
// odd headers): what exactly comes back, and whether anything does.
import { connect } from 'node:net'

export interface RawAnswer {
  /** The status code of the first response, or 0 when the connection closed with no answer. */
  status: number
  text: string
  /** The server closed (or reset) the connection. */
  closed: boolean
}

/** The response after any interim 1xx ones (100 Continue before the answer to Expect). */
function finalResponse(text: string): string {
  let rest = text
  while (/^HTTP\/1\.[01] 1[0-9]{2}/.test(rest)) {
    const end = rest.indexOf('\r\n\r\n')
    if (end < 0) break
    rest = rest.slice(end + 4)
  }
  return rest
}

/** Writes `bytes`, and reads until the server closes or `timeoutMs` passes. */
export function rawRequest(url: string, bytes: string | Buffer, timeoutMs = 5000): Promise<RawAnswer> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) })
    const chunks: Buffer[] = []
    let done = false
    const finish = (closed: boolean) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      const text = finalResponse(Buffer.concat(chunks).toString('latin1'))
      const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(text)
      resolve({ status: m ? Number(m[1]) : 0, text, closed })
    }
    const timer = setTimeout(() => finish(false), timeoutMs)
    // A HEAD answer announces a length but carries no body.
    const bodyless = String(bytes).startsWith('HEAD ')
    socket.on('data', (d) => {
      chunks.push(d)
      // One complete response is enough: a keep-alive server would otherwise hold the socket.
      const text = finalResponse(Buffer.concat(chunks).toString('latin1'))
      const head = text.indexOf('\r\n\r\n')
      const len = /\r\ncontent-length: *([0-9]+)/i.exec(text)
      if (head >= 0 && (bodyless || (len && Buffer.byteLength(text, 'latin1') >= head + 4 + Number(len[1])))) finish(false)
    })
    socket.on('error', () => finish(true))
    socket.on('close', () => finish(true))
    socket.on('connect', () => socket.write(bytes))
  })
}

/** The JSON body of a raw answer (undefined when there is none or it is not JSON). */
export function rawJson(answer: RawAnswer): unknown {
  const body = answer.text.slice(answer.text.indexOf('\r\n\r\n') + 4)
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}
