// A recording TCP proxy on loopback: the wire drill's stand-in for an observer on the network.
// It forwards bytes both ways untouched and keeps a copy of each direction.
import net from 'node:net'
import type { AddressInfo } from 'node:net'

export interface RecordingProxy {
  port: number
  toServer(): Buffer
  toClient(): Buffer
  close(): Promise<void>
}

export async function recordingProxy(target: string): Promise<RecordingProxy> {
  const url = new URL(target)
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  const up: Buffer[] = []
  const down: Buffer[] = []
  const sockets = new Set<net.Socket>()
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: url.hostname, port })
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => sockets.delete(s))
    }
    client.on('data', (b: Buffer) => up.push(b))
    upstream.on('data', (b: Buffer) => down.push(b))
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject))
  return {
    port: (server.address() as AddressInfo).port,
    toServer: () => Buffer.concat(up),
    toClient: () => Buffer.concat(down),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy()
        server.close(() => resolve())
      }),
  }
}
