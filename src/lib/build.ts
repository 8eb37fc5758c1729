// Build plumbing shared by the deploy artifact, the benchmark stacks and the tests: where the
// checkout (or release) root is, whether dist/ is stale, and a private staged copy of the app.
import { execFile, spawn } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { promisify } from 'node:util'

/** The checkout (or release) root: src/lib/ and dist/lib/ both sit two levels below it. */
export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')

function newestMtime(path: string): number {
  const st = statSync(path)
  if (!st.isDirectory()) return st.mtimeMs
  let newest = st.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)))
  return newest
}

/** True when dist/ is missing or older than src/, package.json or the TypeScript config. */
export function buildIsStale(root = ROOT): boolean {
  const built = join(root, 'dist', 'api', 'server.js')
  if (!existsSync(built)) return true
  const inputs = ['src', 'package.json', 'tsconfig.json', 'tsconfig.build.json'].map((p) => join(root, p)).filter((p) => existsSync(p))
  return Math.max(...inputs.map(newestMtime)) > statSync(built).mtimeMs
}

const BUILD_LOCK = join(tmpdir(), 'runway-build.lock')
const run = promisify(execFile)

/** Runs `fn` holding an flock(1) lock on `file` (released when fn settles or this process dies). */
export async function withFileLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const holder = spawn('flock', [file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const exited = new Promise<void>((r) => holder.once('close', () => r()))
  await new Promise<void>((resolve, reject) => {
    holder.stdout.once('data', () => resolve())
    holder.once('error', (err) => reject(new Error(`flock ${file}: ${err.message} (is util-linux installed?)`)))
    void exited.then(() => reject(new Error(`flock ${file} exited before taking the lock`)))
  })
  try {
    return await fn()
  } finally {
    holder.stdin.end()
    await exited
  }
}

/** What `npm run build` does, into another directory: tsc, dist/package.json (ESM), typebox vendored. */
async function compileInto(root: string, outDir: string): Promise<void> {
  const tsc = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc')
  try {
    await run(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], { cwd: root, timeout: 180_000, maxBuffer: 16 << 20 })
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string }
    const why = (e.stdout || e.stderr || e.message).trim().split('\n').slice(0, 3).join(' | ')
    throw new Error(`compiling ${root}/src failed: ${why}`)
  }
  cpSync(join(root, 'src', 'package.json'), join(outDir, 'package.json'))
  // typebox compiled in and the worker bundled, exactly as `npm run build` does it.
  const { vendorTypebox } = (await import(pathToFileURL(join(root, 'scripts', 'vendor-typebox.mjs')).href)) as {
    vendorTypebox(root: string, distDir: string): Promise<void>
  }
  const { bundleWorker } = (await import(pathToFileURL(join(root, 'scripts', 'bundle-worker.mjs')).href)) as {
    bundleWorker(root: string, distDir: string): Promise<void>
  }
  await vendorTypebox(root, outDir)
  await bundleWorker(root, outDir)
}

export interface StagedCopy {
  dir: string
  remove(): void
}

/**
 * A private copy of the app in a temp dir, for tests and benchmarks: `src` (+ tsconfig.json) for
 * the dev server, or `dist` for production (compiled into the copy when the checkout's is stale),
 * with package.json, ecosystem.config.js and a link to node_modules. A rebuild or an edit in the
 * checkout cannot change it under a running stack, edits to it (the dev server's watch test)
 * cannot touch the checkout, and the checkout's .env is not read.
 */
export async function stageCopy(what: 'src' | 'dist', root = ROOT): Promise<StagedCopy> {
  const dir = mkdtempSync(join(tmpdir(), `runway-${what}-`))
  const remove = () => rmSync(dir, { recursive: true, force: true })
  try {
    const copy = (p: string) => cpSync(join(root, p), join(dir, p), { recursive: true })
    // First: bundling a private compile resolves packages (typebox) from the copy's node_modules.
    symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir')
    if (what === 'dist') {
      // A fresh dist/ is copied (under the build lock, so no build swaps it mid-copy); a stale one
      // is left alone and the copy compiled privately, so a test never deletes the dist/ that
      // someone else's process is running from.
      const copied = await withFileLock(BUILD_LOCK, async () => {
        if (buildIsStale(root)) return false
        copy('dist')
        return true
      })
      if (!copied) await compileInto(root, join(dir, 'dist'))
    } else {
      copy('src')
      copy('tsconfig.json')
    }
    copy('package.json')
    copy('ecosystem.config.js')
  } catch (err) {
    remove()
    throw err
  }
  return { dir, remove }
}
