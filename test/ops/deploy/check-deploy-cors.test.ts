// `runway check --deploy` on browser-client (CORS) settings, as a real process against crafted
// target directories: risky origins are warnings with their ids, `*` (or an any-origin regex) with
// credentials is refused by the settings loader (runway.E002), and an nginx site rendered without
// the app's origins is pointed out.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { renderNginx } from '../../../src/ops/proxy/nginx/render.js'
import { runway } from '../../helpers/deploy.js'

const BASE = ['JWT_SIGNING_KEY=kR3v9XqP0s7LmN2bT5wY8zA1cE4gH6jU-strong-key', 'TRUST_PROXY=127.0.0.1', 'SILENCED_CHECKS=runway.W001,runway.W009']

function target(lines: string[]): string {
  const root = mkdtempSync(join(tmpdir(), 'runway-check-cors-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'shared', 'logs'), { recursive: true })
  writeFileSync(join(root, 'shared', '.env'), [...BASE, ...lines, ''].join('\n'))
  return root
}

async function findings(root: string, extra: string[] = []) {
  const r = await runway(['check', '--deploy', '--path', root, '--json', ...extra])
  const report = JSON.parse(r.out) as { ok: boolean; findings: { id: string; level: string; message: string; silenced?: boolean }[] }
  return { code: r.code, live: report.findings.filter((f) => !f.silenced) }
}

t.test('risky origins are warnings, each with its id', async (t) => {
  let r = await findings(target(['CORS_ALLOWED_ORIGINS=*']))
  t.equal(r.code, 0, 'warnings only')
  t.match(r.live, [{ id: 'runway.W020', level: 'warning', message: /every web site can call the API/ }])
  r = await findings(target(['CORS_ALLOWED_ORIGINS=http://app.example.com,http://localhost:5173,https://admin.example.com,null']))
  t.strictSame(
    r.live.map((f) => f.id),
    ['runway.W021', 'runway.W022'],
  )
  t.match(r.live[0]!.message, /allows http:\/\/app\.example\.com over plain HTTP/)
  t.notMatch(r.live[0]!.message, /localhost/, 'a local development origin is not flagged')
  r = await findings(target(['CORS_ALLOWED_ORIGINS=https://app.example.com']))
  t.strictSame(r.live, [], 'an https origin is fine')
})

t.test('* or an any-origin regex with credentials: the loader refuses it (E002)', async (t) => {
  for (const lines of [
    ['CORS_ALLOWED_ORIGINS=*', 'CORS_ALLOW_CREDENTIALS=true'],
    ['CORS_ALLOWED_ORIGIN_REGEXES=https://.*', 'CORS_ALLOW_CREDENTIALS=true'],
  ]) {
    const r = await findings(target(lines))
    t.equal(r.code, 1, lines.join(' '))
    t.match(r.live, [{ id: 'runway.E002', level: 'error', message: /any web site could make credentialed calls/ }])
  }
})

t.test("nginx rendered without the app's origins", async (t) => {
  const root = target(['CORS_ALLOWED_ORIGINS=https://app.example.com'])
  const site = (input: Parameters<typeof renderNginx>[0]) => {
    const file = join(root, 'site.conf')
    writeFileSync(file, renderNginx({ serverNames: ['api.example.com'], upstreams: ['127.0.0.1:3000'], tls: false, ...input }).text)
    return ['--nginx-conf', file]
  }
  let r = await findings(root, site({}))
  t.match(r.live, [{ id: 'runway.W023', message: /render it again with `runway nginx render … --cors-from-app`/ }])
  r = await findings(root, site({ corsOrigins: ['https://other.example.com'] }))
  t.match(r.live, [{ id: 'runway.W023', message: /\(https:\/\/app\.example\.com\)/ }])
  r = await findings(root, site({ corsOrigins: ['https://app.example.com'] }))
  t.strictSame(
    r.live.map((f) => f.id),
    [],
    'the same origins: nothing to say',
  )
})
