// `pm2 jlist` parsing, shared by the deploy's on-host helper and the benchmark stacks: notices
// before the JSON, empty output, missing fields, and output that is not a list.
import t from 'tap'
import { parseJlist } from '../../src/lib/pm2-list.js'

const entry = {
  pm_id: 3,
  pid: 4242,
  name: 'runway',
  monit: { memory: 1048576 },
  pm2_env: { status: 'online', pm_cwd: '/srv/runway/current', pm_uptime: 1000, restart_time: 2 },
}

t.test('reads what runway needs from each process', async (t) => {
  t.same(parseJlist(JSON.stringify([entry])), [
    { id: 3, pid: 4242, name: 'runway', status: 'online', cwd: '/srv/runway/current', startedAt: 1000, restarts: 2, memory: 1048576 },
  ])
})

t.test('notices pm2 prints before the JSON array are skipped', async (t) => {
  t.equal(
    parseJlist(`[PM2] Spawning PM2 daemon\n[PM2] PM2 Successfully daemonized\n${JSON.stringify([entry, { ...entry, pm_id: 4, name: 'other' }])}`).length,
    2,
  )
})

t.test('empty output is an empty list; missing fields get neutral values', async (t) => {
  t.same(parseJlist(''), [])
  t.same(parseJlist('  \n'), [])
  t.same(parseJlist('[{"pm_id":0,"pid":0,"name":"runway"}]'), [
    { id: 0, pid: 0, name: 'runway', status: 'unknown', cwd: '', startedAt: 0, restarts: 0, memory: 0 },
  ])
})

t.test('output that is not a JSON list is an error quoting it', async (t) => {
  t.throws(() => parseJlist('[PM2][ERROR] Daemon not launched'), /pm2 jlist printed no JSON: \[PM2\]\[ERROR\]/)
  t.throws(() => parseJlist('{"pm_id":1}'), /pm2 jlist printed no list/)
})
