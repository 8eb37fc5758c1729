// Where a release goes: a directory on this host, or a directory on a remote host reached with the
// system's ssh (the user's own ~/.ssh/config, keys and agent; BatchMode so nothing ever prompts).
// Every target-side operation is a bash script run through Target.sh(), so the local and the SSH
// paths run the very same steps; only the transport differs (uploads: rsync, or tar over ssh).
import { spawn } from 'node:child_process'
import { cpSync, mkdtempSync, rmSync } from 'node:fs'
import { hostname, tmpdir, userInfo } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'
import { InvalidSetting } from '../../lib/errors.js'

export interface ShResult {
  code: number
  stdout: string
  stderr: string
}

export interface ShOptions {
  timeoutMs?: number
  /** Text for the script's stdin. */
  input?: string
}

export interface Target {
  /** "local:/srv/runway" or "deploy@web1:/srv/runway": what messages and the audit log name. */
  label: string
  /** Absolute deploy root on the target. */
  root: string
  /** The machine's name or address as this side reaches it ("127.0.0.1" for a local target). */
  hostname: string
  /** Runs a bash script on the target (cwd = root when it exists). Never throws on a non-zero exit. */
  sh(script: string, o?: ShOptions): Promise<ShResult>
  /** Copies the contents of a local directory into `dest` (absolute, on the target), creating it. */
  upload(localDir: string, dest: string): Promise<void>
  close(): Promise<void>
}

/** Single-quotes a value for bash. */
export const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`

/** Who is deploying, for the lock and the audit log. */
export const operator = () => `${process.env.SUDO_USER || userInfo().username}@${hostname()}`

export class TargetError extends Error {}

function run(command: string, args: string[], o: ShOptions = {}): Promise<ShResult> {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    const timer = o.timeoutMs
      ? setTimeout(() => {
          stderr += `\n(timed out after ${o.timeoutMs} ms)`
          child.kill('SIGKILL')
        }, o.timeoutMs)
      : undefined
    child.on('error', (err) => {
      clearTimeout(timer)
      resolvePromise({ code: 127, stdout, stderr: `${command}: ${err.message}` })
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr })
    })
    child.stdin.on('error', () => {})
    child.stdin.end(o.input ?? '')
  })
}

const prelude = (root: string) => `set -o pipefail; cd ${q(root)} 2>/dev/null || true\n`

export class LocalTarget implements Target {
  readonly root: string
  readonly label: string
  readonly hostname = '127.0.0.1'
  constructor(path: string) {
    this.root = resolve(path)
    this.label = `local:${this.root}`
  }
  sh(script: string, o?: ShOptions) {
    return run('bash', ['-c', prelude(this.root) + script], o)
  }
  async upload(localDir: string, dest: string) {
    cpSync(localDir, dest, { recursive: true, verbatimSymlinks: true })
  }
  async close() {}
}

export interface SshOptions {
  /** `[user@]host[:port]` */
  host: string
  path: string
  /** ssh -F FILE (default: the user's ~/.ssh/config). */
  configFile?: string
  /** Extra `-o Key=Value` options. */
  options?: string[]
}

export function parseHost(spec: string): { destination: string; port?: number } {
  const m = /^((?:[A-Za-z0-9._-]+@)?(?:\[[0-9A-Fa-f:]+\]|[A-Za-z0-9._-]+))(?::([0-9]{1,5}))?$/.exec(spec)
  if (!m) throw new InvalidSetting('host', spec, '[user@]host[:port]')
  return { destination: m[1]!.replace(/\[|\]/g, ''), port: m[2] ? Number(m[2]) : undefined }
}

/**
 * `[user@]host[:port][:/path]`: a host with its own deploy root (what a target's label reads),
 * for fleets whose hosts keep the app in different directories.
 */
export function splitHostPath(spec: string): { host: string; path?: string } {
  const i = spec.indexOf(':/')
  return i < 0 ? { host: spec } : { host: spec.slice(0, i), path: spec.slice(i + 1) }
}

export class SshTarget implements Target {
  readonly root: string
  readonly label: string
  private readonly destination: string
  private readonly sshArgs: string[]
  private readonly controlDir: string
  private rsync: boolean | undefined
  private readonly port: number | undefined
  readonly hostname: string

  constructor(o: SshOptions) {
    if (!isAbsolute(o.path)) throw new InvalidSetting('path', o.path, 'an absolute path for an SSH target')
    const { destination, port } = parseHost(o.host)
    this.destination = destination
    this.hostname = destination.replace(/^.*@/, '')
    this.port = port
    this.root = o.path.replace(/\/+$/, '') || '/'
    this.label = `${o.host}:${this.root}`
    // One multiplexed connection for all the steps of a deploy (one handshake, not thirty).
    this.controlDir = mkdtempSync(join(tmpdir(), 'runway-ssh-'))
    this.sshArgs = [
      ...(o.configFile ? ['-F', o.configFile] : []),
      ...(port ? ['-p', String(port)] : []),
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=10',
      '-o',
      'ServerAliveInterval=15',
      '-o',
      'ControlMaster=auto',
      '-o',
      `ControlPath=${join(this.controlDir, 'c')}`,
      '-o',
      'ControlPersist=30',
      ...(o.options ?? []).flatMap((opt) => ['-o', opt]),
    ]
  }

  async sh(script: string, o?: ShOptions) {
    const r = await run('ssh', [...this.sshArgs, this.destination, `bash -c ${q(prelude(this.root) + script)}`], o)
    if (r.code === 255) {
      const why = reasonLine(r.stderr) || 'connection error'
      // First contact: BatchMode never asks to accept an unknown host key, so say how to.
      const hint = /Host key verification failed|No .*host key is known/i.test(r.stderr)
        ? `the host key of ${this.destination} is not in known_hosts: check its fingerprint, then \`ssh-keyscan${this.port ? ` -p ${this.port}` : ''} ${this.destination.replace(/^.*@/, '')} >> ~/.ssh/known_hosts\` (or ssh to it once interactively)`
        : 'check the host, your key and ~/.ssh/config; runway never prompts'
      throw new TargetError(`ssh ${this.destination} failed: ${why} (${hint})`)
    }
    return r
  }

  async upload(localDir: string, dest: string) {
    // rsync on both ends when available; otherwise a tar stream through the same ssh connection.
    this.rsync ??= (await run('rsync', ['--version'])).code === 0 && (await this.sh('command -v rsync >/dev/null')).code === 0
    const mk = await this.sh(`mkdir -p ${q(dest)}`)
    if (mk.code !== 0) throw new TargetError(`cannot create ${dest} on ${this.destination}: ${reasonLine(mk.stderr)}`)
    const ssh = ['ssh', ...this.sshArgs].map((a) => q(a)).join(' ')
    const r = this.rsync
      ? await run('rsync', ['-a', '--delete', '-e', ssh, `${localDir}/`, `${this.destination}:${dest}/`])
      : await run('bash', ['-c', `set -o pipefail; tar -C ${q(localDir)} -cf - . | ${ssh} ${q(this.destination)} ${q(`tar -C ${q(dest)} -xf -`)}`])
    if (r.code !== 0) throw new TargetError(`upload to ${this.destination}:${dest} failed: ${reasonLine(r.stderr)}`)
  }

  async close() {
    await run('ssh', [...this.sshArgs, '-O', 'exit', this.destination], { timeoutMs: 5000 })
    rmSync(this.controlDir, { recursive: true, force: true })
  }
}

/** The line that says what went wrong: an error line if there is one (a Node crash ends with "Node.js v20..."), else the last. */
export const reasonLine = (text: string) => {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  return lines.find((l) => /^(\w*Error\b|runway[\w ]*:|npm (ERR!|error))/.test(l)) ?? lines.pop() ?? ''
}
