// The faults a drill injects into a running stack, each checked: the killed process really is
// gone, the reloaded workers really are new. A fault that did not happen is reported as such.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { isAlive } from '../../../lib/process.js'

/** The process holding the listening socket of `port` on 127.0.0.1 (Linux /proc), or null. */
export function listenerPid(port: number): number | null {
  const inodes = new Set<string>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = ''
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/)
      // local_address is HEX_IP:HEX_PORT; state 0A = LISTEN; inode is field 9.
      if (f.length > 9 && f[3] === '0A' && Number.parseInt(f[1]!.split(':')[1]!, 16) === port) inodes.add(f[9]!)
    }
  }
  if (!inodes.size) return null
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${entry}/fd`)
    } catch {
      continue
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[([0-9]+)\]$/.exec(readlinkSync(`/proc/${entry}/fd/${fd}`))
        if (m && inodes.has(m[1]!)) return Number(entry)
      } catch {
        // closed while we looked
      }
    }
  }
  return null
}

/** kill -9, then wait (≤ 3 s) until the process is really gone. */
export async function kill9(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    return !isAlive(pid)
  }
  for (let i = 0; i < 300 && isAlive(pid); i++) await new Promise((r) => setTimeout(r, 10))
  return !isAlive(pid)
}
