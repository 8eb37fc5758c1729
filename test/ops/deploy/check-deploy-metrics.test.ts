// `runway check --deploy` on the metrics settings, as a real process against crafted targets: a
// metrics listener on a non-loopback address is a warning (runway.W030); loopback or off is not.
import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runway } from '../../helpers/deploy.js'

const BASE = ['JWT_SIGNING_KEY=kR3v9XqP0s7LmN2bT5wY8zA1cE4gH6jU-strong-key', 'TRUST_PROXY=127.0.0.1', 'SILENCED_CHECKS=runway.W001,runway.W009']

async function metricsFindings(lines: string[]) {
  const root = mkdtempSync(join(tmpdir(), 'runway-check-metrics-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  mkdirSync(join(root, 'shared', 'logs'), { recursive: true })
  writeFileSync(join(root, 'shared', '.env'), [...BASE, ...lines, ''].join('\n'))
  const r = await runway(['check', '--deploy', '--path', root, '--json'])
  const report = JSON.parse(r.out) as { findings: { id: string; level: string; message: string; silenced?: boolean }[] }
  return { code: r.code, ids: report.findings.filter((f) => !f.silenced && f.id === 'runway.W030'), all: report.findings }
}

t.test('metrics on a non-loopback address: a warning naming the port', async (t) => {
  const r = await metricsFindings(['METRICS_PORT=9464', 'METRICS_HOST=0.0.0.0'])
  t.equal(r.code, 0, 'a warning, not an error')
  t.match(r.ids, [{ id: 'runway.W030', level: 'warning', message: /^METRICS_HOST=0\.0\.0\.0: GET \/metrics on port 9464 answers anyone/ }])
})

t.test('metrics on loopback, or off: nothing to say', async (t) => {
  for (const lines of [['METRICS_PORT=9464'], ['METRICS_PORT=9464', 'METRICS_HOST=::1'], ['METRICS_HOST=10.0.0.5']]) {
    const r = await metricsFindings(lines)
    t.same(r.ids, [], lines.join(' '))
  }
})
