// The deploy drill's production stack brought up the way an operator does it: `runway deploy
// --path DIR` to a target on this machine (a real artifact, npm-installed dependencies, migrate,
// verify, switch, pm2 startOrReload under DIR/.pm2, health gate), nginx in front. The fault is a
// second `runway deploy` of a changed release while the load runs.
import { spawn } from 'node:child_process'
import { appendFileSync, cpSync, mkdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { ROOT } from '../../../lib/build.js'
import { freePort } from '../../../lib/process.js'
import { buildArtifact } from '../../../ops/deploy/artifact.js'
import { startNginx } from '../../stacks/nginx.js'
import { attachPm2Cluster } from '../../stacks/pm2.js'
import type { Running, StageContext } from '../stages.js'

/** Dependencies a release installs, cached across drills (keyed by lockfile): `npm ci` runs once. */
const DEPS_CACHE = join(tmpdir(), 'runway-drill-deps')
const BIN = join(ROOT, 'bin', 'runway.js')

/** `runway deploy` as an operator runs it (a real process), bounded; resolves with its exit code and last line. */
function runwayDeploy(args: string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, 'deploy', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, out, err })
    })
  })
}

const lastLine = (text: string) => text.trim().split('\n').pop() ?? ''

export interface Deployed extends Running {
  /** Deploys the changed release (a comment added to dist/api/server.js) under the same root. */
  redeploy(): Promise<{ ok: boolean; release: string; detail: string }>
}

/** `runway deploy` of this checkout to a fresh target under the stage's directory, nginx in front. */
export async function startDeployed(ctx: StageContext): Promise<Deployed> {
  const root = join(dirname(ctx.dataDir), 'target')
  mkdirSync(join(root, 'shared'), { recursive: true })
  const port = await freePort()
  const env = {
    ...ctx.env,
    NODE_ENV: 'production',
    PORT: String(port),
    DATA_DIR: ctx.dataDir,
    LOG_LEVEL: 'warn',
    TRUST_PROXY: '127.0.0.1',
    OPENAPI_UI: 'false',
  }
  writeFileSync(
    join(root, 'shared', '.env'),
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}\n`)
      .join(''),
  )
  // Two releases of the same commit, told apart by their sha (release names end in it).
  const built = await buildArtifact(ROOT)
  const art = (sha: string) => {
    const dir = join(dirname(ctx.dataDir), `artifact-${sha}`)
    cpSync(built.dir, dir, { recursive: true })
    writeFileSync(join(dir, 'REVISION'), JSON.stringify({ ...built.revision, sha, dirty: false }))
    return dir
  }
  const v1 = art('drill-v1')
  const v2 = art('drill-v2')
  built.remove()
  appendFileSync(join(v2, 'dist', 'api', 'server.js'), `\n// runway drill deploy: changed at ${new Date().toISOString()}\n`)
  const common = ['--path', root, '--workers', String(ctx.instances), '--deps-cache', DEPS_CACHE, '--health-timeout', '30']
  const first = await runwayDeploy([...common, '--artifact', v1], 600_000)
  const pm2Home = join(root, '.pm2')
  const release = () => readlinkSync(join(root, 'current')).replace(/^releases\//, '')
  let pm2: ReturnType<typeof attachPm2Cluster> | undefined
  try {
    pm2 = attachPm2Cluster({ pm2Home, cwd: join(root, 'current'), port, instances: ctx.instances })
  } catch (err) {
    if (first.code === 0) throw err
  }
  if (first.code !== 0) {
    await pm2?.stop()
    throw new Error(`runway deploy of the first release failed: ${lastLine(first.err) || lastLine(first.out)}`)
  }
  const cluster = pm2!
  const nginx = await startNginx({ upstreams: [`127.0.0.1:${port}`], tls: false, rateLimit: false }).catch(async (err: unknown) => {
    await cluster.stop()
    throw err
  })
  return {
    url: nginx.url,
    mint: false,
    pm2: cluster,
    dir: root,
    pids: async () => [...(await cluster.pids()), ...(await nginx.pids())],
    stop: async () => {
      await nginx.stop()
      await cluster.stop()
      rmSync(root, { recursive: true, force: true })
    },
    async redeploy() {
      const r = await runwayDeploy([...common, '--artifact', v2], 300_000)
      const live = release()
      const ok = r.code === 0 && live.endsWith('drill-v2')
      return {
        ok,
        release: live,
        detail: ok ? `runway deploy exit 0, release ${live} live` : `runway deploy exit ${r.code}: ${lastLine(r.err) || lastLine(r.out)}; live: ${live}`,
      }
    },
  }
}
