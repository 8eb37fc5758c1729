// The stack runway is compared with: the Django REST Framework + simplejwt project in
// loadtest/django/ under gunicorn's sync workers (the seed's `gunicorn -w N`), on its own SQLite
// file with bench users hashed by Django's default hasher. From Debian's packages, not npm's:
// DJANGO_PACKAGES says which. Stopped by PID like every other stack.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from '../../lib/build.js'
import { freePort, processTree, startService, waitForHttp } from '../../lib/process.js'
import type { RunningStack } from './api.js'

export const DJANGO_PACKAGES = 'python3-django python3-djangorestframework python3-djangorestframework-simplejwt gunicorn'
/** Debian's interpreter: the packages above install for it, not for a pyenv or venv python3 on PATH. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
const PROJECT = join(ROOT, 'loadtest', 'django')

export interface DjangoVersions {
  django: string
  djangorestframework: string
  simplejwt: string
  gunicorn: string
}

/** The installed versions, or an error naming the Debian packages to install. */
export function djangoVersions(): DjangoVersions {
  const probe = spawnSync(
    PYTHON,
    [
      '-c',
      'import django, rest_framework, gunicorn; from importlib.metadata import version; print(django.get_version(), rest_framework.VERSION, version("djangorestframework-simplejwt"), gunicorn.__version__)',
    ],
    { encoding: 'utf8' },
  )
  if (probe.status !== 0) {
    const why = probe.error?.message ?? probe.stderr.trim().split('\n').at(-1) ?? `exit ${probe.status}`
    throw new Error(`the Django stack is not installed (${why}): apt-get install ${DJANGO_PACKAGES}`)
  }
  const [django = '', djangorestframework = '', simplejwt = '', gunicorn = ''] = probe.stdout.trim().split(' ')
  return { django, djangorestframework, simplejwt, gunicorn }
}

export interface DjangoStack extends RunningStack {
  /** The Unix socket gunicorn also binds (StartDjangoOptions.socket). */
  socket?: string
  /** The bench users' usernames (all share `password`). */
  usernames: string[]
  password: string
  /** The password hasher the users were made with, as Django names it (pbkdf2_sha256$260000). */
  hasher: string
}

export interface StartDjangoOptions {
  /** Where the SQLite file and gunicorn's log go. */
  dir: string
  /** gunicorn sync workers. */
  workers: number
  users: number
  /** Also bind this Unix socket (gunicorn --bind unix:PATH), in a directory nginx's user can pass through. */
  socket?: string
}

/** Migrates a fresh database, creates the users, starts gunicorn and waits until it answers. */
export async function startDjango(o: StartDjangoOptions): Promise<DjangoStack> {
  mkdirSync(o.dir, { recursive: true })
  const env = {
    ...process.env,
    PYTHONPATH: PROJECT,
    DJANGO_SETTINGS_MODULE: 'seed.settings',
    DJANGO_SECRET_KEY: randomBytes(32).toString('hex'),
    DJANGO_DB: join(o.dir, 'db.sqlite3'),
    PYTHONDONTWRITEBYTECODE: '1',
  }
  const password = randomBytes(12).toString('base64url')
  const step = (args: string[]) => {
    const r = spawnSync(PYTHON, args, { cwd: o.dir, env, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`django: ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim().split('\n').at(-1)}`)
    return r.stdout.trim()
  }
  step(['-m', 'django', 'migrate', '--noinput', '-v', '0'])
  const hasher = step(['-m', 'seed.create_users', String(o.users), password])

  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const service = startService({
    name: `gunicorn -w ${o.workers}`,
    command: PYTHON,
    args: ['-m', 'gunicorn', '--workers', String(o.workers), '--bind', `127.0.0.1:${port}`, ...(o.socket ? ['--bind', `unix:${o.socket}`] : []), 'seed.wsgi'],
    cwd: o.dir,
    env,
    logFile: join(o.dir, 'gunicorn.log'),
  })
  try {
    // No token: 401 is the answer of a stack that is up.
    await waitForHttp(`${url}/api/me/`, { service, timeoutMs: 30_000, accept: (s) => s === 401 })
  } catch (err) {
    await service.stop(2000)
    throw new Error(`${(err as Error).message}; gunicorn's output is in ${join(o.dir, 'gunicorn.log')}`)
  }
  return {
    name: `Django (gunicorn -w ${o.workers})`,
    url,
    usernames: Array.from({ length: o.users }, (_, i) => `bench-${i}`),
    password,
    hasher,
    ...(o.socket ? { socket: o.socket } : {}),
    pids: async () => processTree(service.pid),
    stop: () => service.stop(),
  }
}
