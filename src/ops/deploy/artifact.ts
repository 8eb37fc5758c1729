// The artifact: exactly what a release needs and nothing else — compiled dist/ (with the schema
// migrations), package.json, package-lock.json, ecosystem.config.js, bin/ (and the data files the
// compiled CLI reads: nginx/ templates, loadtest/ scenarios) — plus REVISION naming
// the commit it was built from. Built once locally, so every host of a rolling deploy runs the
// same bytes; no compiler and no dev dependencies on a server.
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { stageCopy } from '../../lib/build.js'
import { operator } from './target.js'

export interface Revision {
  sha: string
  dirty: boolean
  builtAt: string
  builtBy: string
}

export interface Artifact {
  dir: string
  revision: Revision
  bytes: number
  /** Removes the artifact directory (only for artifacts this process built). */
  remove(): void
}

export class ArtifactError extends Error {}

const git = (source: string, args: string[]) => execFileSync('git', ['-C', source, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()

export interface GitState {
  sha: string
  /** `git status --porcelain` lines: what makes the tree dirty. */
  changes: string[]
}

export function gitState(source: string): GitState {
  try {
    const sha = git(source, ['rev-parse', '--short=7', 'HEAD'])
    const changes = git(source, ['status', '--porcelain', '--untracked-files=normal']).split('\n').filter(Boolean)
    return { sha, changes }
  } catch (err) {
    throw new ArtifactError(`${source} is not a git checkout with a commit (${(err as Error).message.split('\n')[0]}): deploy from a clone of the repository`)
  }
}

export function directoryBytes(path: string): number {
  const st = statSync(path, { throwIfNoEntry: false })
  if (!st) return 0
  if (st.isSymbolicLink() || !st.isDirectory()) return st.size
  return readdirSync(path).reduce((sum, name) => sum + directoryBytes(join(path, name)), 0)
}

// Besides what stageCopy puts there (dist/, package.json, ecosystem.config.js): the lockfile for
// npm ci, the CLI entry, the nginx templates (`runway nginx render` on the server) and the load-test
// scenarios the compiled CLI loads (not loadtest/results).
const FILES = ['package-lock.json', 'bin', 'nginx', 'loadtest'] as const
const skip = (path: string) => !/[/\\]loadtest[/\\]results([/\\]|$)/.test(path)

/** Builds dist/ when stale (under the shared build lock) and stages the artifact in a temp dir. */
export async function buildArtifact(source: string): Promise<Artifact> {
  const { sha, changes } = gitState(source)
  for (const f of ['package.json', 'package-lock.json', 'ecosystem.config.js', 'bin']) {
    if (!existsSync(join(source, f))) throw new ArtifactError(`${join(source, f)} is missing: deploy from a checkout of runway`)
  }
  let staged: Awaited<ReturnType<typeof stageCopy>>
  try {
    staged = await stageCopy('dist', source)
  } catch (err) {
    throw new ArtifactError((err as Error).message)
  }
  // stageCopy links the checkout's node_modules for local runs; a release installs its own.
  rmSync(join(staged.dir, 'node_modules'), { force: true })
  for (const f of FILES) if (existsSync(join(source, f))) cpSync(join(source, f), join(staged.dir, f), { recursive: true, filter: skip })
  const revision: Revision = { sha, dirty: changes.length > 0, builtAt: new Date().toISOString(), builtBy: operator() }
  writeFileSync(join(staged.dir, 'REVISION'), `${JSON.stringify(revision)}\n`)
  return { dir: staged.dir, revision, bytes: directoryBytes(staged.dir), remove: staged.remove }
}

/** An artifact built earlier (`runway deploy --build-only --out DIR`), deployed as it is. */
export function readArtifact(dir: string): Artifact {
  const file = join(dir, 'REVISION')
  if (!existsSync(file)) throw new ArtifactError(`${dir} is not a runway artifact (no REVISION): build one with \`runway deploy --build-only --out DIR\``)
  let revision: Revision
  try {
    revision = JSON.parse(readFileSync(file, 'utf8')) as Revision
  } catch {
    throw new ArtifactError(`${file} is not valid JSON: rebuild the artifact`)
  }
  if (!/^[0-9a-zA-Z._-]+$/.test(revision.sha ?? '')) throw new ArtifactError(`${file} has no valid sha: rebuild the artifact`)
  for (const f of ['dist/api/server.js', 'dist/ops/deploy/remote.js', 'package.json', 'package-lock.json', 'ecosystem.config.js']) {
    if (!existsSync(join(dir, f))) throw new ArtifactError(`${dir} lacks ${f}: rebuild the artifact`)
  }
  return { dir, revision, bytes: directoryBytes(dir), remove: () => {} }
}
