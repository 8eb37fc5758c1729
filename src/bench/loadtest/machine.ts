// Facts about the machine a result came from: without them a req/s figure cannot be compared.
import { cpus, loadavg, totalmem, release, type as osType } from 'node:os'
import { readFileSync } from 'node:fs'
import type { Machine } from './schema.js'
import { autocannonVersion, wrkVersion } from './engines.js'
import { nginxVersion } from '../../ops/proxy/nginx/binary.js'

function osName(): string {
  try {
    const pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1]
    if (pretty) return `${pretty} (${osType()} ${release()})`
  } catch {
    // not Linux, or no os-release
  }
  return `${osType()} ${release()}`
}

export async function machineFacts(o: { nginxBin: string | null; sharedWith: string }): Promise<Machine> {
  const list = cpus()
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cpuCount: list.length,
    memoryMb: Math.round(totalmem() / 1024 / 1024),
    os: osName(),
    node: process.version,
    nginx: o.nginxBin ? await nginxVersion(o.nginxBin).catch(() => null) : null,
    wrk: wrkVersion(),
    autocannon: autocannonVersion(),
    loadAverage: loadavg().map((n) => Math.round(n * 100) / 100),
    sharedWith: o.sharedWith,
  }
}
