// Finding a program: on PATH or in the sbin directories a normal user's PATH often lacks.
import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'

/** An executable on PATH or in one of `extraDirs` (sbin is often not on a normal user's PATH). */
export function findExecutable(name: string, extraDirs: string[] = []): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs]) {
    const candidate = join(dir, name)
    if (isExecutableFile(candidate)) return candidate
  }
  return null
}

export function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}
